// #/runs: every run with its live progress, filters in the URL, tags, and a selection to compare.
import { api, canWrite, getCatalog, getMe, readOnlyReason } from '../api.js';
import { anyActive, isActive, methodName, STATUS_LABELS, STATUSES } from '../constants.js';
import { plural } from '../format.js';
import { poller, subscribe } from '../live.js';
import { queryString, replaceQuery } from '../route.js';
import { loadSelection, saveSelection, sortedIds } from '../selection.js';
import { runRow, runsTable } from '../tables/runs.js';
import { clear, errorBox, fill, h } from '../ui.js';

const PAGE_SIZE = 100;
const FILTERS = ['q', 'status', 'model', 'dataset', 'method', 'tag', 'owner', 'group'];
const SEARCH_DEBOUNCE_MS = 250;
const REFETCH_DEBOUNCE_MS = 400;

export async function render(root, params, { signal }) {
  const query = new URLSearchParams(params);
  const me = await getMe().catch(() => null);
  if (signal.aborted) return null;
  const selection = loadSelection();
  let jobs = [];
  let total = 0;
  const filtered = () => FILTERS.some(f => query.get(f));

  const count = h('span', { class: 'muted', id: 'runs-count' }, '');
  const compareButton = h('button', { type: 'button', class: 'primary', id: 'compare-selected', onclick: () => {
    location.hash = `#/compare?ids=${sortedIds(selection).join(',')}`;
  } });
  const clearSelection = h('button', { type: 'button', class: 'link-button', onclick: () => {
    selection.clear(); saveSelection(selection); drawTable();
  } }, 'clear selection');
  // Bulk actions on the selection, one request per run through the runs' own endpoints.
  const bulkNote = h('span', { class: 'small muted', id: 'bulk-note', role: 'status' });
  const bulkBox = h('span', { class: 'bulk-actions', id: 'bulk-actions' });
  async function bulk(verb, ids, request) {
    const failures = [];
    let done = 0;
    for (const id of ids) {
      bulkNote.textContent = `${verb} ${done + failures.length + 1} of ${ids.length}…`;
      try { await request(id); done += 1; } catch (err) {
        if (err.name === 'AbortError') return;
        failures.push(`#${id}: ${err.message}`);
      }
    }
    bulkNote.textContent = `${verb} ${plural(done, 'run')}${failures.length ? `; not ${verb}: ${failures.join('; ')}` : ''}`;
    bulkNote.classList.toggle('error-text', failures.length > 0);
    refresh(true);
  }
  const selectedIds = () => sortedIds(selection);
  const cancelSelected = h('button', { type: 'button', class: 'secondary', id: 'cancel-selected', onclick: () => {
    const ids = selectedIds().filter(id => { const job = jobs.find(j => j.id === id); return !job || isActive(job.status); });
    if (!ids.length) { bulkNote.textContent = 'none of the selected runs is queued or running'; return; }
    bulk('cancelled', ids, id => api(`/api/jobs/${id}/cancel`, { method: 'POST', signal }));
  } }, 'Cancel selected');
  const deleteSelected = h('button', { type: 'button', class: 'danger-outline', id: 'delete-selected', onclick: () => {
    const ids = selectedIds();
    fill(bulkBox, h('span', { class: 'small' }, `Delete ${plural(ids.length, 'run')}, their steps and checkpoints? `),
      h('button', { type: 'button', class: 'danger', id: 'delete-selected-confirm', onclick: async () => {
        drawBulk();
        await bulk('deleted', ids, async id => {
          await api(`/api/jobs/${id}`, { method: 'DELETE', signal });
          selection.delete(id);
          saveSelection(selection);
        });
        updateSelectionUi();
      } }, 'Delete'),
      h('button', { type: 'button', class: 'link-button', onclick: () => drawBulk() }, 'keep them'));
  } }, 'Delete selected');
  const drawBulk = () => fill(bulkBox, canWrite(me) ? [cancelSelected, deleteSelected] : null);
  drawBulk();
  const filterForm = h('form', { class: 'filters', id: 'filters', onsubmit: e => e.preventDefault() });
  // Outside the form: redrawing the filters (when the catalog arrives) must not take focus from it.
  let searchTimer = null;
  const searchBox = h('input', { type: 'search', id: 'run-search', name: 'q', placeholder: 'Search run names',
    'aria-label': 'search run names', value: query.get('q') || '', autocomplete: 'off', oninput: () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => setFilter('q', searchBox.value.trim()), SEARCH_DEBOUNCE_MS);
    } });
  const tableBox = h('div', { class: 'table-box' }, h('p', { class: 'muted pad' }, 'Loading runs…'));
  const pager = h('div', { class: 'pager' });

  root.append(
    h('section', { class: 'page-head' },
      h('h1', {}, 'Runs'), count, searchBox, h('div', { class: 'spacer' }), bulkNote, clearSelection, bulkBox, compareButton,
      canWrite(me) ? h('a', { class: 'button', href: '#/new', id: 'new-run-button' }, '+ New run')
        : h('span', { class: 'muted read-only-note', id: 'read-only-note', title: readOnlyReason(me) }, 'read only')),
    filterForm, tableBox, pager);

  function updateSelectionUi() {
    compareButton.textContent = `Compare selected (${selection.size})`;
    compareButton.disabled = selection.size === 0;
    clearSelection.hidden = selection.size === 0;
    bulkBox.hidden = selection.size === 0;
  }

  // ------------------------------------------------------------ filters

  function select(name, label, options) {
    const el = h('select', { name, 'aria-label': label, onchange: () => setFilter(name, el.value) },
      h('option', { value: '' }, `${label}: all`),
      options.map(([value, text]) => h('option', { value, selected: query.get(name) === value }, text)));
    return h('label', { class: 'filter' }, el);
  }

  function textFilter(name, label) {
    const el = h('input', { name, type: 'search', placeholder: label, value: query.get(name) || '', size: 10,
      onchange: () => setFilter(name, el.value.trim()) });
    return h('label', { class: 'filter' }, el);
  }

  function setFilter(name, value) {
    if (value) query.set(name, value); else query.delete(name);
    query.delete('offset');
    replaceQuery(query);
    refresh(true);
  }

  let groups = [];
  // The group filter's compare link: every run of the group, seeds drawn as one mean curve.
  const groupCompare = () => (query.get('group')
    ? h('a', { class: 'button secondary', id: 'compare-group', href: `#/compare?group=${encodeURIComponent(query.get('group'))}` }, 'Compare this group')
    : null);

  function drawFilters(catalog) {
    const chosen = query.get('group');
    const groupOptions = groups.map(g => [String(g.id), `#${g.id} ${g.name} (${plural(g.jobs, 'run')})`]);
    if (chosen && !groupOptions.some(([v]) => v === chosen)) groupOptions.push([chosen, `group #${chosen}`]);
    fill(filterForm,
      select('status', 'Status', STATUSES.map(s => [s, STATUS_LABELS[s]])),
      select('model', 'Model', (catalog?.models || []).map(m => [m.name, m.name])),
      select('dataset', 'Dataset', (catalog?.datasets || []).map(d => [d.name, d.name])),
      select('method', 'Method', (catalog?.methods || []).map(m => [m.kind, methodName(m.kind)])),
      textFilter('tag', 'tag'),
      textFilter('owner', 'owner'),
      groupOptions.length ? select('group', 'Group', groupOptions) : null,
      groupCompare(),
      filtered() ? h('button', { type: 'button', class: 'link-button', onclick: () => {
        FILTERS.forEach(f => query.delete(f)); query.delete('offset'); replaceQuery(query); searchBox.value = '';
        drawFilters(catalog); refresh(true);
      } }, 'clear filters') : null);
  }

  // ------------------------------------------------------------ table

  const rowOptions = {
    selection,
    onToggle: (job, checked) => {
      if (checked) selection.add(job.id); else selection.delete(job.id);
      saveSelection(selection); updateSelectionUi();
    },
  };

  function drawTable() {
    updateSelectionUi();
    count.textContent = `${plural(total, 'run')}${filtered() ? ' match' : ''}`;
    if (!jobs.length) {
      fill(tableBox, h('div', { class: 'empty' },
        filtered() ? 'No run matches these filters.' : h('span', {}, 'No runs yet. ', h('a', { href: '#/new' }, 'Start one'), ' (the presets run in a minute on the built-in digits data).')));
      clear(pager);
      return;
    }
    fill(tableBox, runsTable(jobs, {
      ...rowOptions,
      onToggleAll: checked => { jobs.forEach(j => (checked ? selection.add(j.id) : selection.delete(j.id))); saveSelection(selection); drawTable(); },
      sort: query.get('sort') || '-created_at',
      onSort: sort => { query.set('sort', sort); replaceQuery(query); refresh(true); },
    }));
    drawPager();
  }

  function drawPager() {
    const offset = Number(query.get('offset') || 0);
    clear(pager);
    if (total <= PAGE_SIZE) return;
    const go = o => { query.set('offset', String(o)); replaceQuery(query); refresh(true); };
    pager.append(
      h('button', { type: 'button', class: 'secondary', disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE_SIZE)) }, '‹ newer'),
      h('span', { class: 'muted' }, `${offset + 1}–${Math.min(offset + PAGE_SIZE, total)} of ${total}`),
      h('button', { type: 'button', class: 'secondary', disabled: offset + PAGE_SIZE >= total, onclick: () => go(offset + PAGE_SIZE) }, 'older ›'));
  }

  function replaceRow(job) {
    const i = jobs.findIndex(j => j.id === job.id);
    if (i < 0) return false;
    jobs[i] = job;
    tableBox.querySelector(`tr[data-job-id="${job.id}"]`)?.replaceWith(runRow(job, rowOptions));
    return true;
  }

  // ------------------------------------------------------------ data

  let fetching = null;
  let again = false;
  let loaded = false;
  async function refresh(showLoading = false) {
    if (fetching) { again ||= showLoading; return fetching; } // never two list requests at once
    if (showLoading) tableBox.classList.add('stale');
    const request = new URLSearchParams();
    FILTERS.forEach(f => query.get(f) && request.set(f, query.get(f)));
    request.set('sort', query.get('sort') || '-created_at');
    request.set('limit', String(PAGE_SIZE));
    request.set('offset', query.get('offset') || '0');
    fetching = api(`/api/jobs?${queryString(request)}`, { signal })
      .then(data => {
        jobs = data.items; total = data.total;
        loaded = true;
        drawTable();
        return anyActive(jobs);
      })
      .catch(err => {
        if (err.name !== 'AbortError') fill(tableBox, errorBox(err));
        return false;
      })
      .finally(() => {
        fetching = null; tableBox.classList.remove('stale');
        if (again && !signal.aborted) { again = false; refresh(true); } // the filters changed meanwhile
      });
    return fetching;
  }

  function matchesFilters(job) {
    const status = query.get('status');
    if (status && !status.split(',').includes(job.status)) return false;
    for (const key of ['model', 'dataset', 'method', 'owner']) if (query.get(key) && job[key] !== query.get(key)) return false;
    if (query.get('group') && String(job.group_id) !== query.get('group')) return false;
    if (query.get('q') && !job.name.toLowerCase().includes(query.get('q').toLowerCase())) return false;
    return !query.get('tag') || (job.tags || []).includes(query.get('tag'));
  }

  let refetchTimer = null;
  const unsubscribe = subscribe(event => {
    if (event.type === 'reconnect') { refresh(); return; }
    if (event.type !== 'job' || !loaded) return; // the first list request is still on its way: it is fresh
    if (!replaceRow(event.data) && matchesFilters(event.data)) {
      // A run this page does not show yet (new, or now matching the filters): fetch the list again, once.
      clearTimeout(refetchTimer);
      refetchTimer = setTimeout(() => refresh(), REFETCH_DEBOUNCE_MS);
    }
  });
  const poll = poller(() => refresh());

  drawFilters(null);
  updateSelectionUi();
  let catalogLoaded = null;
  getCatalog().then(catalog => { catalogLoaded = catalog; drawFilters(catalog); }).catch(() => {});
  api('/api/groups?limit=100', { signal }).then(data => { groups = data.items; drawFilters(catalogLoaded); }).catch(() => {});
  await refresh();

  return () => { unsubscribe(); poll.stop(); clearTimeout(refetchTimer); clearTimeout(searchTimer); };
}
