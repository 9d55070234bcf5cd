// The run page's table of steps; a click on a row inspects that step.
import { bytes, dash, duration, ms, pct, realisedSize, si, signedPtsShort, times } from '../format.js';
import { h } from '../ui.js';

const HEADERS = ['step', 'target', 'sparsity', 'accuracy', 'before fine-tune', 'drop', 'weights left', 'size', 'FLOPs', 'latency', 'speedup', 'time'];

const num = value => h('td', { class: 'num' }, value);

export function stepsTable(steps, { selectedIndex, onSelect }) {
  return h('table', { class: 'steps', id: 'steps-table' },
    h('thead', {}, h('tr', {}, HEADERS.map(t => h('th', {}, t)))),
    h('tbody', {}, steps.map(s => h('tr', { class: s.index === selectedIndex ? 'selected' : '', 'data-step': s.index, onclick: () => onSelect(s.index) },
      num(s.index + 1), num(pct(s.target_sparsity)), num(pct(s.sparsity, 2)),
      num(pct(s.accuracy, 2)), num(pct(s.accuracy_before_finetune, 2)),
      num(s.accuracy_drop === undefined || s.accuracy_drop === null ? dash : signedPtsShort(s.accuracy_drop, 2)),
      num(si(s.params_nonzero)), num(bytes(realisedSize(s))),
      num(si(s.flops_effective)), num(ms(s.latency?.realised_ms)),
      num(times(s.latency?.speedup)), num(duration(s.seconds))))));
}
