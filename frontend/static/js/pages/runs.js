// #/runs: every run with its live progress, filters in the URL, tags, and a selection to compare.
import { api, canWrite, getCatalog, getMe, readOnlyReason } from '../api.js';
import { poller, subscribe } from '../live.js';
import { queryString, replaceQuery } from '../route.js';
import { ago, clear, fill, dash, errorBox, h, methodChip, methodSummary, pct, progressBar, statusBadge, times } from '../ui.js';

const PAGE_SIZE = 100;
const FILTERS = ['q', 'status', 'model', 'dataset', 'method', 'tag', 'owner'];
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const SELECTION_KEY = 'prunelab.selection';
const SORTABLE = { id: 'id', name: 'name', status: 'status', sparsity: 'last_sparsity', best: 'best_accuracy', created: 'created_at' };

export function loadSelection() {
  try { return new Set(JSON.parse(sessionStorage.getItem(SELECTION_KEY) || '[]')); } catch { return new Set(); }
}

function saveSelection(selection) {
  try { sessionStorage.setItem(SELECTION_KEY, JSON.stringify([...selection])); } catch { /* ignore */ }
}

export async function render(root, params, { signal }) {
  const query = new URLSearchParams(params);
  const me = await getMe().catch(() => null);
  if (signal.aborted) return null;
  const selection = loadSelection();
  let jobs = [];
  let total = 0;

  const count = h('span', { class: 'muted', id: 'runs-count' }, '');
  const compareButton = h('button', { type: 'button', class: 'primary', id: 'compare-selected', onclick: () => {
    location.hash = `#/compare?ids=${[...selection].sort((a, b) => a - b).join(',')}`;
  } });
  const clearSelection = h('button', { type: 'button', class: 'link-button', onclick: () => {
    selection.clear(); saveSelection(selection); drawTable();
  } }, 'clear selection');
  const filterForm = h('form', { class: 'filters', id: 'filters', onsubmit: e => e.preventDefault() });
  // Outside the form: redrawing the filters (when the catalog arrives) must not take focus from it.
  let searchTimer = null;
  const searchBox = h('input', { type: 'search', id: 'run-search', name: 'q', placeholder: 'Search run names',
    'aria-label': 'search run names', value: query.get('q') || '', autocomplete: 'off', oninput: () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => setFilter('q', searchBox.value.trim()), 250);
    } });
  const tableBox = h('div', { class: 'table-box' }, h('p', { class: 'muted pad' }, 'Loading runs…'));
  const pager = h('div', { class: 'pager' });

  root.append(
    h('section', { class: 'page-head' },
      h('h1', {}, 'Runs'), count, searchBox, h('div', { class: 'spacer' }), clearSelection, compareButton,
      canWrite(me) ? h('a', { class: 'button', href: '#/new', id: 'new-run-button' }, '+ New run')
        : h('span', { class: 'muted read-only-note', id: 'read-only-note', title: readOnlyReason(me) }, 'read only')),
    filterForm, tableBox, pager);

  function updateSelectionUi() {
    compareButton.textContent = `Compare selected (${selection.size})`;
    compareButton.disabled = selection.size === 0;
    clearSelection.hidden = selection.size === 0;
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

  function drawFilters(catalog) {
    fill(filterForm, 
      select('status', 'Status', STATUSES.map(s => [s, s])),
      select('model', 'Model', (catalog?.models || []).map(m => [m.name, m.name])),
      select('dataset', 'Dataset', (catalog?.datasets || []).map(d => [d.name, d.name])),
      select('method', 'Method', (catalog?.methods || []).map(m => [m.kind, m.kind])),
      textFilter('tag', 'tag'),
      textFilter('owner', 'owner'),
      FILTERS.some(f => query.get(f)) ? h('button', { type: 'button', class: 'link-button', onclick: () => {
        FILTERS.forEach(f => query.delete(f)); query.delete('offset'); replaceQuery(query); searchBox.value = '';
        drawFilters(catalog); refresh(true);
      } }, 'clear filters') : null);
  }

  // ------------------------------------------------------------ table

  function sortHeader(key, label) {
    const sort = query.get('sort') || '-created_at';
    const column = SORTABLE[key];
    const active = sort.replace(/^-/, '') === column;
    const descending = sort.startsWith('-');
    return h('th', { class: `sortable${active ? ' sorted' : ''}`, onclick: () => {
      query.set('sort', active && descending ? column : `-${column}`);
      replaceQuery(query);
      refresh(true);
    } }, label, active ? (descending ? ' ▾' : ' ▴') : '');
  }

  function row(job) {
    const summary = job.summary || {};
    const checkbox = h('input', { type: 'checkbox', class: 'select-run', 'aria-label': `select run ${job.id}`,
      checked: selection.has(job.id), onchange: () => {
        if (checkbox.checked) selection.add(job.id); else selection.delete(job.id);
        saveSelection(selection); updateSelectionUi();
      } });
    const tags = (job.tags || []).map(tag => h('a', { class: 'tag', href: `#/runs?tag=${encodeURIComponent(tag)}`, title: `only runs tagged ${tag}` }, tag));
    const best = summary.best_accuracy;
    const base = summary.baseline_accuracy;
    return h('tr', { 'data-job-id': job.id, class: `run-row status-row-${job.status}` },
      h('td', {}, checkbox),
      h('td', { class: 'num muted' }, `#${job.id}`),
      h('td', { class: 'name-cell' }, h('a', { href: `#/run/${job.id}`, class: 'run-name', title: job.name }, job.name), tags.length ? h('div', { class: 'tags' }, tags) : null),
      h('td', {}, statusBadge(job.status)),
      h('td', { class: 'progress-cell' }, progressBar(job),
        job.status === 'running' || job.status === 'queued' ? h('div', { class: 'small muted ellipsis', title: job.message }, job.message || '') : null,
        job.status === 'failed' ? h('div', { class: 'small error-text ellipsis', title: job.error || '' }, (job.error || 'failed').split('\n')[0]) : null),
      h('td', {}, job.model, h('div', { class: 'small muted' }, job.dataset)),
      h('td', {}, methodChip(job.method), h('div', { class: 'small muted method-summary', title: `${methodSummary(job.spec)} · ${job.schedule}` }, [methodSummary(job.spec), job.schedule].filter(Boolean).join(' · '))),
      h('td', { class: 'num' }, pct(summary.sparsity)),
      h('td', { class: 'num' }, pct(best), base !== null && base !== undefined ? h('div', { class: 'small muted' }, `base ${pct(base)}`) : null),
      h('td', { class: 'num' }, summary.speedup ? times(summary.speedup) : dash),
      h('td', { class: 'muted' }, job.owner || dash),
      h('td', { class: 'muted nowrap', title: job.created_at }, ago(job.created_at)));
  }

  function drawTable() {
    updateSelectionUi();
    count.textContent = `${total} run${total === 1 ? '' : 's'}${FILTERS.some(f => query.get(f)) ? ' match' : ''}`;
    if (!jobs.length) {
      fill(tableBox, h('div', { class: 'empty' },
        FILTERS.some(f => query.get(f)) ? 'No run matches these filters.' : h('span', {}, 'No runs yet. ', h('a', { href: '#/new' }, 'Start one'), ' (the presets run in a minute on the built-in digits data).')));
      clear(pager);
      return;
    }
    const allBox = h('input', { type: 'checkbox', 'aria-label': 'select all shown', checked: jobs.every(j => selection.has(j.id)),
      onchange: () => { jobs.forEach(j => (allBox.checked ? selection.add(j.id) : selection.delete(j.id))); saveSelection(selection); drawTable(); } });
    const table = h('table', { class: 'runs', id: 'runs-table' },
      h('thead', {}, h('tr', {},
        h('th', {}, allBox), sortHeader('id', 'ID'), sortHeader('name', 'Name'), sortHeader('status', 'Status'),
        h('th', {}, 'Progress'), h('th', {}, 'Model / data'), h('th', {}, 'Method'), sortHeader('sparsity', 'Sparsity'),
        sortHeader('best', 'Best acc.'), h('th', {}, 'Speedup'), h('th', {}, 'Owner'), sortHeader('created', 'Created'))),
      h('tbody', {}, jobs.map(row)));
    fill(tableBox, table);
    const offset = Number(query.get('offset') || 0);
    clear(pager);
    if (total > PAGE_SIZE) {
      const go = o => { query.set('offset', String(o)); replaceQuery(query); refresh(true); };
      pager.append(
        h('button', { type: 'button', class: 'secondary', disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE_SIZE)) }, '‹ newer'),
        h('span', { class: 'muted' }, `${offset + 1}–${Math.min(offset + PAGE_SIZE, total)} of ${total}`),
        h('button', { type: 'button', class: 'secondary', disabled: offset + PAGE_SIZE >= total, onclick: () => go(offset + PAGE_SIZE) }, 'older ›'));
    }
  }

  function replaceRow(job) {
    const i = jobs.findIndex(j => j.id === job.id);
    if (i < 0) return false;
    jobs[i] = job;
    const old = tableBox.querySelector(`tr[data-job-id="${job.id}"]`);
    if (old) old.replaceWith(row(job));
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
        return jobs.some(j => j.status === 'queued' || j.status === 'running');
      })
      .catch(err => {
        if (err.name !== 'AbortError') fill(tableBox, errorBox(err));
        return false;
      })
      .finally(() => {
        fetching = null; tableBox.classList.remove('stale');
        if (again && !signal.aborted) { again = false; refresh(true); }  // the filters changed meanwhile
      });
    return fetching;
  }

  function matchesFilters(job) {
    const status = query.get('status');
    if (status && !status.split(',').includes(job.status)) return false;
    for (const key of ['model', 'dataset', 'method', 'owner']) if (query.get(key) && job[key] !== query.get(key)) return false;
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
      refetchTimer = setTimeout(() => refresh(), 400);
    }
  });
  const poll = poller(() => refresh());

  drawFilters(null);
  updateSelectionUi();
  getCatalog().then(drawFilters).catch(() => {});
  await refresh();

  return () => { unsubscribe(); poll.stop(); clearTimeout(refetchTimer); clearTimeout(searchTimer); };
}
