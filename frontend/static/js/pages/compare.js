// #/compare?ids=1,2&x=sparsity: the curves of several runs overlaid (accuracy vs sparsity, FLOPs, latency or
// size), the Pareto front over all of them, and a table of key figures. Everything is in the URL, so a link
// reopens the same comparison. The server downsamples long histories (/api/compare?points=...).
import { api, ApiError } from '../api.js';
import { draw, loadPlotly, purge } from '../charts.js';
import { anyActive, methodName } from '../constants.js';
import { compareFigure, runStyles, X_AXES, Y_AXES } from '../figures/compare-chart.js';
import { bandTraces, meanRun, seedSets } from '../figures/seed-bands.js';
import { pct, plural } from '../format.js';
import { poller, subscribe } from '../live.js';
import { queryString, replaceQuery } from '../route.js';
import { loadSelection, sortedIds } from '../selection.js';
import { COLUMNS, compareCsv, compareTable, diffTable } from '../tables/compare.js';
import { errorBox, fill, h, segmented } from '../ui.js';

export { paretoFront } from '../figures/compare-chart.js';

const POINTS = 200;
const GROUP_LIMIT = 200; // the most runs /api/compare takes at once
const CHIP_LIMIT = 30; // more runs than this: no chips, the table lists them

function parseIds(text) {
  return [...new Set(String(text || '').split(',').map(s => Number(s.trim())).filter(n => Number.isInteger(n) && n > 0))];
}

// The ids a 404 from /api/compare says are missing: the structured body's `errors[0].value` (field "ids");
// until every API answers that way, the ids ending the old text "jobs not found: 3, 5".
export function missingIds(err) {
  const entry = err.errors.find(e => e.field === 'ids' && e.value !== undefined && e.value !== null);
  if (entry) return parseIds(Array.isArray(entry.value) ? entry.value.join(',') : entry.value);
  return parseIds((err.message.match(/not found: ([\d, ]+)$/) || ['', ''])[1]);
}

// A file made in the page (no server round trip), offered as a download.
function saveText(text, filename, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = Object.assign(document.createElement('a'), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function emptyState(selection) {
  return h('div', { class: 'empty' },
    selection.length ? h('span', {}, `You selected ${plural(selection.length, 'run')} in the list: `,
      h('a', { href: `#/compare?ids=${selection.join(',')}`, id: 'compare-selection' }, 'compare them'), '.')
      : h('span', {}, 'Tick runs in the ', h('a', { href: '#/runs' }, 'run list'), ' and press "Compare selected", or add runs here.'));
}

export async function render(root, params, { signal }) {
  loadPlotly().catch(() => {}); // in parallel with the data
  const query = new URLSearchParams(params);
  // #/compare?group=ID: every run of a group (a sweep), read from the run list.
  const groupId = Number(query.get('group')) || null;
  let group = null;
  let ids = parseIds(query.get('ids'));
  if (groupId) {
    const [info, listed] = await Promise.all([api(`/api/groups/${groupId}`, { signal }),
      api(`/api/jobs?group=${groupId}&sort=id&limit=${GROUP_LIMIT}`, { signal })]);
    group = info;
    ids = listed.items.map(j => j.id).sort((a, b) => a - b);
  }
  // Runs that differ only in their seed: one curve (mean +- std) unless ?seeds=each.
  let eachSeed = query.get('seeds') === 'each';
  let shown = [];
  let xKey = X_AXES[query.get('x')] ? query.get('x') : 'sparsity';
  let yKey = Y_AXES[query.get('y')] ? query.get('y') : 'after';
  let showFront = query.get('front') !== '0';
  // The table's order, in the URL as sort=best (descending) or sort=+name (ascending).
  const sortParam = query.get('sort') || 'best';
  let sort = { key: sortParam.replace(/^[+-]/, ''), descending: !sortParam.startsWith('+') };
  if (!COLUMNS.some(c => c.key === sort.key)) sort = { key: 'best', descending: true };
  let runs = [];
  let colors = new Map();
  const colorOf = id => colors.get(id) || '#64748b';

  const chartEl = h('div', { id: 'compare-chart', class: 'chart chart-tall' });
  const tableBox = h('div', { class: 'table-box', id: 'compare-table-box' });
  const diffBox = h('div', { class: 'table-box', id: 'params-diff-box' });
  const csvButton = h('button', { type: 'button', class: 'secondary small-button', id: 'export-csv', title: 'the table as CSV, in its order',
    onclick: () => saveText(compareCsv(runs, Y_AXES[yKey].value, sort), `prunelab-compare-${ids.join('-').slice(0, 80)}.csv`, 'text/csv') }, 'CSV');
  const chips = h('div', { class: 'run-chips', id: 'compare-runs' });
  const picker = h('select', { id: 'add-run', 'aria-label': 'add a run' }, h('option', { value: '' }, '+ add a run…'));
  const note = h('span', { class: 'small muted', id: 'compare-note' });

  const goTo = nextIds => {
    const next = new URLSearchParams({ ...Object.fromEntries(query), ids: nextIds.join(',') });
    next.delete('group');
    location.hash = `#/compare?${queryString(next)}`;
  };
  // A mean curve stands for all its seeds: removing it removes them all.
  const remove = id => { const gone = shown.find(r => r.job.id === id)?.members || [id]; goTo(ids.filter(i => !gone.includes(i))); };
  picker.addEventListener('change', () => { const id = Number(picker.value); if (id && !ids.includes(id)) goTo([...ids, id]); });
  const setQuery = (key, value) => { if (value === null) query.delete(key); else query.set(key, value); replaceQuery(query); };

  const copyButton = h('button', { type: 'button', class: 'secondary', id: 'copy-link', onclick: async () => {
    try { await navigator.clipboard.writeText(location.href); copyButton.textContent = 'Link copied'; } catch { prompt('Link to this comparison', location.href); }
    setTimeout(() => { copyButton.textContent = 'Copy link'; }, 1500);
  } }, 'Copy link');

  root.append(
    h('section', { class: 'page-head' }, h('h1', {}, 'Compare runs'), note, h('div', { class: 'spacer' }), copyButton),
    h('section', { class: 'toolbar' },
      h('span', { class: 'small muted' }, 'x axis'),
      segmented('x axis', { sparsity: 'Sparsity', flops: 'FLOPs', latency: 'Latency', size: 'Size' }, xKey, key => { xKey = key; setQuery('x', key); drawChart(); }),
      h('span', { class: 'small muted' }, 'accuracy'),
      segmented('accuracy', { after: 'after fine-tuning', before: 'right after pruning' }, yKey, key => { yKey = key; setQuery('y', key); drawChart(); drawTable(); }),
      h('label', { class: 'check-inline' }, h('input', { type: 'checkbox', id: 'show-front', checked: showFront, onchange: e => {
        showFront = e.target.checked; setQuery('front', showFront ? null : '0'); drawChart();
      } }), 'Pareto front'),
      h('span', { class: 'small muted' }, 'seeds'),
      segmented('seeds', { mean: 'mean ± std', each: 'each run' }, eachSeed ? 'each' : 'mean', key => {
        eachSeed = key === 'each'; setQuery('seeds', eachSeed ? 'each' : null); redraw();
      })),
    chips,
    h('section', { class: 'card chart-card' }, chartEl),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Key figures'),
      h('span', { class: 'small muted' }, 'from the downsampled curves; "≤1 pt" = the highest sparsity within 1 point of the baseline; click a header to sort'),
      h('span', { class: 'spacer' }), csvButton), tableBox),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Parameters that differ'),
      h('span', { class: 'small muted' }, 'the spec fields whose values are not the same in every compared run')), diffBox));

  async function fillPicker() {
    try {
      const data = await api('/api/jobs?limit=100&sort=-created_at', { signal });
      picker.append(...data.items.filter(j => !ids.includes(j.id)).map(j => h('option', { value: j.id },
        `#${j.id} ${j.name} · ${methodName(j.method)} · ${j.status}${j.summary?.sparsity ? ` · ${pct(j.summary.sparsity)}` : ''}`)));
    } catch { /* the picker just stays empty */ }
  }

  if (!ids.length) {
    chartEl.replaceWith(emptyState(sortedIds(loadSelection())));
    chips.append(picker);
    fillPicker();
    return null;
  }

  const drawChart = () => {
    const { data, layout } = compareFigure(shown, { xKey, yKey, showFront });
    const seedsOf = new Map(shown.map(r => [r.job.id, r.seeds || 1]));
    data.forEach(t => { if (t.meta?.jobId) t.meta.seeds = seedsOf.get(t.meta.jobId); });
    const bands = eachSeed ? [] : bandTraces(shown, runStyles(shown), X_AXES[xKey], Y_AXES[yKey], yKey);
    return draw(chartEl, [...bands, ...data], layout);
  };
  const onSort = key => {
    sort = sort.key === key ? { key, descending: !sort.descending } : { key, descending: !['run', 'status', 'model', 'method'].includes(key) };
    setQuery('sort', sort.key === 'best' && sort.descending ? null : `${sort.descending ? '' : '+'}${sort.key}`);
    drawTable();
  };
  const drawTable = () => fill(tableBox, compareTable(shown, { accuracy: Y_AXES[yKey].value, onRemove: remove, sort, onSort, colorOf }));

  function drawChips() {
    const styles = runStyles(shown);
    const many = shown.length > CHIP_LIMIT;
    fill(chips, many ? h('span', { class: 'small muted' }, `${shown.length} curves (the table lists them all)`)
      : shown.map((run, i) => h('span', { class: 'run-chip', style: { '--method': styles[i].color }, title: `${methodName(run.job.method)}: ${styles[i].symbol} markers` },
        h('span', { class: `swatch symbol-${styles[i].symbol}` }), h('a', { href: `#/run/${run.job.id}` }, `#${run.job.id} ${run.job.name}`),
        h('button', { type: 'button', class: 'chip-remove', title: 'remove', onclick: () => remove(run.job.id) }, '×'))),
    picker);
  }

  async function load() {
    try {
      runs = (await api(`/api/compare?ids=${ids.join(',')}&points=${POINTS}`, { signal })).runs;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        // Some runs were deleted: compare the rest.
        const missing = missingIds(err);
        if (missing.length && missing.length < ids.length) { goTo(ids.filter(i => !missing.includes(i))); return false; }
      }
      throw err;
    }
    await redraw();
    return anyActive(runs.map(r => r.job));
  }

  // The curves shown: one per run, or one per configuration (runs differing only in seed) with n.
  function redraw() {
    shown = eachSeed ? runs.map(r => ({ ...r, seeds: 1, members: [r.job.id] })) : seedSets(runs).map(meanRun);
    const repeats = shown.filter(r => r.seeds > 1).length;
    note.textContent = `${group ? `group #${group.id} ${group.name} · ` : ''}${plural(runs.length, 'run')}`
      + `${repeats ? ` · ${plural(shown.length, 'curve')}, the mean ± std of runs differing only in seed` : ''} · up to ${POINTS} points each`;
    const styles = runStyles(shown);
    colors = new Map(shown.map((run, i) => [run.job.id, styles[i].color]));
    drawChips();
    drawTable();
    fill(diffBox, diffTable(shown, colorOf));
    return drawChart();
  }

  let reloadTimer = null;
  const unsubscribe = subscribe(event => {
    if (event.type === 'reconnect' || (event.type === 'step' && ids.includes(event.data.job_id))) {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(() => load().catch(() => {}), 1000);
    }
  });
  const poll = poller(() => load());

  try {
    await load();
  } catch (err) {
    if (err.name === 'AbortError') return null;
    chartEl.replaceWith(errorBox(err));
  }
  fillPicker();
  return () => { unsubscribe(); poll.stop(); clearTimeout(reloadTimer); purge(chartEl); };
}
