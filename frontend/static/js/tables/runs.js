// The runs list's table: one row per run with its live progress, a checkbox for the comparison selection,
// and sortable headers.
import { isActive } from '../constants.js';
import { ago, dash, describeMethod, pct, queueText, times } from '../format.js';
import { h, methodChip, progressBar, statusBadge } from '../ui.js';

// Header label -> the API's sort column.
export const SORTABLE = { id: 'id', name: 'name', status: 'status', sparsity: 'last_sparsity', best: 'best_accuracy', created: 'created_at' };

// sort: the current "-created_at"-style sort; onSort(column) sets the next one.
function sortHeader(key, label, sort, onSort) {
  const column = SORTABLE[key];
  const active = sort.replace(/^-/, '') === column;
  const descending = sort.startsWith('-');
  return h('th', { class: `sortable${active ? ' sorted' : ''}`, onclick: () => onSort(active && descending ? column : `-${column}`) },
    label, active ? (descending ? ' ▾' : ' ▴') : '');
}

// selection: the Set of selected ids; onToggle(job, checked) when its checkbox changes.
export function runRow(job, { selection, onToggle }) {
  const summary = job.summary || {};
  const checkbox = h('input', { type: 'checkbox', class: 'select-run', 'aria-label': `select run ${job.id}`,
    checked: selection.has(job.id), onchange: () => onToggle(job, checkbox.checked) });
  const tags = (job.tags || []).map(tag => h('a', { class: 'tag', href: `#/runs?tag=${encodeURIComponent(tag)}`, title: `only runs tagged ${tag}` }, tag));
  if (job.group_id) tags.unshift(h('a', { class: 'tag group-chip', href: `#/runs?group=${job.group_id}`, title: 'only the runs of this group (sweep)' }, `group #${job.group_id}`));
  const base = summary.baseline_accuracy;
  const method = [describeMethod(job.spec), job.schedule].filter(Boolean).join(' · ');
  return h('tr', { 'data-job-id': job.id, class: `run-row status-row-${job.status}` },
    h('td', {}, checkbox),
    h('td', { class: 'num muted' }, `#${job.id}`),
    h('td', { class: 'name-cell' }, h('a', { href: `#/run/${job.id}`, class: 'run-name', title: job.name }, job.name), tags.length ? h('div', { class: 'tags' }, tags) : null),
    h('td', {}, statusBadge(job.status)),
    h('td', { class: 'progress-cell' }, progressBar(job),
      isActive(job.status) ? h('div', { class: 'small muted ellipsis', title: job.message }, (job.status === 'queued' && queueText(job)) || job.message || '') : null,
      job.status === 'failed' ? h('div', { class: 'small error-text ellipsis', title: job.error || '' }, (job.error || 'failed').split('\n')[0]) : null),
    h('td', {}, job.model, h('div', { class: 'small muted' }, job.dataset)),
    h('td', {}, methodChip(job.method), h('div', { class: 'small muted method-summary', title: method }, method)),
    h('td', { class: 'num' }, pct(summary.sparsity)),
    h('td', { class: 'num' }, pct(summary.best_accuracy), base !== null && base !== undefined ? h('div', { class: 'small muted' }, `base ${pct(base)}`) : null),
    h('td', { class: 'num' }, summary.speedup ? times(summary.speedup) : dash),
    h('td', { class: 'muted' }, job.owner || dash),
    h('td', { class: 'muted nowrap', title: job.created_at }, ago(job.created_at)));
}

export function runsTable(jobs, { selection, onToggle, onToggleAll, sort, onSort }) {
  const allBox = h('input', { type: 'checkbox', 'aria-label': 'select all shown', checked: jobs.every(j => selection.has(j.id)),
    onchange: () => onToggleAll(allBox.checked) });
  const th = (key, label) => sortHeader(key, label, sort, onSort);
  return h('table', { class: 'runs', id: 'runs-table' },
    h('thead', {}, h('tr', {},
      h('th', {}, allBox), th('id', 'ID'), th('name', 'Name'), th('status', 'Status'),
      h('th', {}, 'Progress'), h('th', {}, 'Model / data'), h('th', {}, 'Method'), th('sparsity', 'Sparsity'),
      th('best', 'Best acc.'), h('th', {}, 'Speedup'), h('th', {}, 'Owner'), th('created', 'Created'))),
    h('tbody', {}, jobs.map(job => runRow(job, { selection, onToggle }))));
}
