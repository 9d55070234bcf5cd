// The compare page's tables: key figures per run (sortable by any column, exported as CSV in the browser)
// and the parameters diff, the spec fields whose values differ between the compared runs.
import { dash, pct, signedPtsShort, speedupText, times } from '../format.js';
import { h, methodChip, statusBadge } from '../ui.js';
import { baselineOf, pointLatency } from '../figures/compare-chart.js';

// accuracy(point): the accuracy the page compares (after fine-tuning or right after pruning).
export function keyFigures(run, accuracy) {
  const base = baselineOf(run);
  const points = run.points;
  const last = points[points.length - 1];
  const within = base === null ? [] : points.filter(p => (accuracy(p) ?? -1) >= base - 0.01);
  const best = points.reduce((m, p) => Math.max(m, accuracy(p) ?? -Infinity), -Infinity);
  const lastAccuracy = last ? accuracy(last) ?? null : null;
  return {
    base, last, best: Number.isFinite(best) ? best : null, lastAccuracy,
    delta: lastAccuracy !== null && base !== null ? lastAccuracy - base : null,
    withinOne: within.length ? Math.max(...within.map(p => p.sparsity)) : null,
    flopsFewer: last?.flops_effective ? last.flops_dense / last.flops_effective : null,
    sizeSmaller: last?.size_sparse_bytes ? last.size_dense_bytes / last.size_sparse_bytes : null,
    latency: pointLatency(last),
  };
}

// key, header, title, sort value, cell text (numbers right-aligned), CSV value.
const text = v => (v === null || v === undefined ? '' : v);
export const COLUMNS = [
  { key: 'run', label: 'run', sort: r => r.job.name.toLowerCase() },
  { key: 'status', label: 'status', sort: r => r.job.status },
  { key: 'model', label: 'model', sort: r => `${r.job.model} ${r.job.dataset}` },
  { key: 'method', label: 'method', sort: r => r.job.method },
  { key: 'steps', label: 'steps', title: 'pruning steps stored', num: true, sort: r => r.total_points ?? r.points.length, show: v => v, csv: v => v },
  { key: 'baseline', label: 'baseline', title: 'dense accuracy', num: true, sort: (r, f) => f.base, show: v => pct(v), csv: text },
  { key: 'sparsity', label: 'sparsity', title: 'sparsity of the last step', num: true, sort: (r, f) => f.last?.sparsity ?? null, show: v => pct(v), csv: text },
  { key: 'accuracy', label: 'accuracy', title: 'accuracy of the last step', num: true, sort: (r, f) => f.lastAccuracy, show: v => pct(v), csv: text },
  { key: 'delta', label: 'Δ pts', title: 'last accuracy minus baseline, in points', num: true, sort: (r, f) => f.delta, show: v => (v === null ? dash : signedPtsShort(v)), csv: v => (v === null ? '' : v * 100) },
  { key: 'best', label: 'best', title: 'best accuracy over the steps', num: true, sort: (r, f) => f.best, show: v => pct(v), csv: text },
  { key: 'within', label: '≤1 pt', title: 'highest sparsity within 1 point of the baseline', num: true, sort: (r, f) => f.withinOne, show: v => pct(v), csv: text },
  { key: 'flops', label: 'FLOPs ÷', title: 'dense FLOPs / effective FLOPs, last step', num: true, sort: (r, f) => f.flopsFewer, show: v => (v ? times(v) : dash), csv: text },
  { key: 'size', label: 'size ÷', title: 'dense size / sparse size, last step', num: true, sort: (r, f) => f.sizeSmaller, show: v => (v ? times(v) : dash), csv: text },
  { key: 'speedup', label: 'speedup', title: 'measured latency speedup, last step ("within noise" when the timings overlap)', num: true,
    sort: (r, f) => (f.latency?.significant === false ? 1 : f.latency?.speedup ?? null), show: (v, f) => speedupText(f.latency, { range: false }), csv: text },
];

// The rows in the order asked for: sort = {key, descending}; missing values last either way.
export function sortedRows(runs, accuracy, sort) {
  const column = COLUMNS.find(c => c.key === sort.key) || COLUMNS.find(c => c.key === 'best');
  const rows = runs.map(run => ({ run, f: keyFigures(run, accuracy) }));
  const value = row => column.sort(row.run, row.f);
  return rows.sort((a, b) => {
    const x = value(a), y = value(b);
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    const order = typeof x === 'string' ? x.localeCompare(y) : x - y;
    return sort.descending ? -order : order;
  });
}

const num = value => h('td', { class: 'num' }, value);

// sort: {key, descending}; onSort(key) when a header is clicked.
export function compareTable(runs, { accuracy, onRemove, sort, onSort, colorOf }) {
  const rows = sortedRows(runs, accuracy, sort);
  const header = c => h('th', { title: c.title, class: `sortable${sort.key === c.key ? ' sorted' : ''}`, 'data-sort': c.key, onclick: () => onSort(c.key) },
    c.label, sort.key === c.key ? (sort.descending ? ' ▾' : ' ▴') : '');
  return h('table', { class: 'compare', id: 'compare-table' },
    h('thead', {}, h('tr', {}, COLUMNS.map(header), h('th', {}, ''))),
    h('tbody', {}, rows.map(({ run, f }) => {
      const job = run.job;
      const cells = COLUMNS.filter(c => c.num).map(c => num(c.show(c.sort(run, f), f)));
      return h('tr', { 'data-job-id': job.id },
        h('td', { class: 'name-cell', title: job.name }, h('span', { class: 'swatch-inline', style: { '--method': colorOf(job.id) } }),
          h('a', { href: `#/run/${job.id}` }, `#${job.id} ${job.name}`)),
        h('td', {}, statusBadge(job.status)),
        h('td', {}, job.model, h('div', { class: 'small muted' }, job.dataset)),
        h('td', {}, methodChip(job.method), h('div', { class: 'small muted' }, job.schedule)),
        cells,
        h('td', {}, h('button', { type: 'button', class: 'link-button', title: 'remove from the comparison', onclick: () => onRemove(job.id) }, '×')));
    })));
}

// ---------------------------------------------------------------- CSV

// The run columns are named as in the run export (/api/jobs/ID/export.csv).
const CSV_HEAD = ['run_id', 'run_name', 'model', 'dataset', 'method', 'schedule', 'status', 'steps', 'baseline_accuracy',
  'last_sparsity', 'last_accuracy', 'delta_pts', 'best_accuracy', 'sparsity_within_1pt', 'flops_reduction',
  'size_reduction', 'speedup', 'speedup_significant'];

const csvCell = v => {
  const s = v === null || v === undefined ? '' : String(v);
  // Quote what CSV needs quoted; a leading =, +, - or @ would be a formula in a spreadsheet.
  const safe = /^[=+\-@]/.test(s) && Number.isNaN(Number(s)) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

// The key-figures table as CSV, rows in the table's order, raw numbers (shares 0..1, delta in points).
export function compareCsv(runs, accuracy, sort) {
  const lines = [CSV_HEAD.join(',')];
  for (const { run, f } of sortedRows(runs, accuracy, sort)) {
    const j = run.job;
    const col = key => COLUMNS.find(c => c.key === key);
    const raw = key => col(key).csv(col(key).sort(run, f));
    lines.push([j.id, j.name, j.model, j.dataset, j.method, j.schedule, j.status, raw('steps'), raw('baseline'), raw('sparsity'),
      raw('accuracy'), raw('delta'), raw('best'), raw('within'), raw('flops'), raw('size'), f.latency?.speedup ?? '',
      f.latency?.significant ?? ''].map(csvCell).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

// ---------------------------------------------------------------- parameters diff

// A spec as dotted keys: {"method.block_size": [2, 4], "schedule.rate": 0.2, ...}; lists stay values.
export function flattenSpec(spec, prefix = '', out = {}) {
  for (const [key, value] of Object.entries(spec || {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object' && !Array.isArray(value)) flattenSpec(value, path, out);
    else out[path] = value;
  }
  return out;
}

const shown = v => (v === undefined ? dash : v === null ? 'default' : Array.isArray(v) ? `[${v.join(', ')}]` : typeof v === 'object' ? JSON.stringify(v) : String(v));

// [{field, values: [per run]}] for the spec fields that are not the same in every run (the name left out:
// the table says it).
export function specDiff(runs) {
  const flat = runs.map(run => flattenSpec(run.job.spec));
  const fields = [...new Set(flat.flatMap(Object.keys))].filter(f => f !== 'name').sort();
  return fields
    .map(field => ({ field, values: flat.map(s => s[field]) }))
    .filter(({ values }) => new Set(values.map(v => JSON.stringify(v ?? null))).size > 1);
}

export function diffTable(runs, colorOf) {
  const diff = specDiff(runs);
  if (runs.length < 2) return h('p', { class: 'muted pad', id: 'params-diff' }, 'Compare two runs or more to see the parameters that differ.');
  if (!diff.length) return h('p', { class: 'muted pad', id: 'params-diff' }, 'These runs have the same parameters (apart from their names).');
  return h('table', { class: 'params-diff', id: 'params-diff' },
    h('thead', {}, h('tr', {}, h('th', {}, 'parameter'), runs.map(run => h('th', { title: run.job.name },
      h('span', { class: 'swatch-inline', style: { '--method': colorOf(run.job.id) } }), `#${run.job.id}`)))),
    h('tbody', {}, diff.map(({ field, values }) => h('tr', { 'data-field': field },
      h('td', { class: 'param-name' }, field), values.map(v => h('td', { class: 'param-value' }, shown(v)))))));
}
