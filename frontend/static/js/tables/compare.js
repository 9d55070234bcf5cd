// The compare page's table of key figures per run, best accuracy first.
import { methodColor } from '../constants.js';
import { dash, pct, signedPtsShort, times } from '../format.js';
import { h, methodChip, statusBadge } from '../ui.js';
import { baselineOf } from '../figures/compare-chart.js';

const COLUMNS = [['run'], ['status'], ['model'], ['method'], ['steps', 'pruning steps stored'], ['baseline', 'dense accuracy'],
  ['sparsity', 'sparsity of the last step'], ['accuracy', 'accuracy of the last step'], ['Δ pts', 'last accuracy minus baseline, in points'],
  ['best', 'best accuracy over the steps'], ['≤1 pt', 'highest sparsity within 1 point of the baseline'],
  ['FLOPs ÷', 'dense FLOPs / effective FLOPs, last step'], ['size ÷', 'dense size / sparse size, last step'], ['speedup', 'measured latency speedup, last step'], ['']];

// accuracy(point): the accuracy the page compares (after fine-tuning or right after pruning).
export function keyFigures(run, accuracy) {
  const base = baselineOf(run);
  const points = run.points;
  const last = points[points.length - 1];
  const within = base === null ? [] : points.filter(p => (accuracy(p) ?? -1) >= base - 0.01);
  const best = points.reduce((m, p) => Math.max(m, accuracy(p) ?? -Infinity), -Infinity);
  return {
    base, last, best: Number.isFinite(best) ? best : null,
    lastAccuracy: last ? accuracy(last) ?? null : null,
    withinOne: within.length ? Math.max(...within.map(p => p.sparsity)) : null,
    flopsFewer: last?.flops_effective ? last.flops_dense / last.flops_effective : null,
    sizeSmaller: last?.size_sparse_bytes ? last.size_dense_bytes / last.size_sparse_bytes : null,
  };
}

const num = value => h('td', { class: 'num' }, value);

export function compareTable(runs, { accuracy, onRemove }) {
  const rows = runs.map(run => ({ run, f: keyFigures(run, accuracy) })).sort((a, b) => (b.f.best ?? -1) - (a.f.best ?? -1));
  return h('table', { class: 'compare', id: 'compare-table' },
    h('thead', {}, h('tr', {}, COLUMNS.map(([t, title]) => h('th', { title }, t)))),
    h('tbody', {}, rows.map(({ run, f }) => {
      const job = run.job;
      return h('tr', { 'data-job-id': job.id },
        h('td', { class: 'name-cell', title: job.name }, h('span', { class: 'swatch-inline', style: { '--method': methodColor(job.method) } }),
          h('a', { href: `#/run/${job.id}` }, `#${job.id} ${job.name}`)),
        h('td', {}, statusBadge(job.status)),
        h('td', {}, job.model, h('div', { class: 'small muted' }, job.dataset)),
        h('td', {}, methodChip(job.method), h('div', { class: 'small muted' }, job.schedule)),
        num(run.total_points ?? run.points.length),
        num(pct(f.base)),
        num(pct(f.last?.sparsity)),
        num(pct(f.lastAccuracy)),
        num(f.lastAccuracy !== null && f.base !== null ? signedPtsShort(f.lastAccuracy - f.base) : dash),
        num(pct(f.best)),
        num(pct(f.withinOne)),
        num(f.flopsFewer ? times(f.flopsFewer) : dash),
        num(f.sizeSmaller ? times(f.sizeSmaller) : dash),
        num(times(f.last?.speedup)),
        h('td', {}, h('button', { type: 'button', class: 'link-button', title: 'remove from the comparison', onclick: () => onRemove(job.id) }, '×')));
    })));
}
