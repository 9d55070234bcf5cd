// The run page's table of steps (numbered from 1, as a person counts them); a click on a row inspects that
// step. Latency shows its p10–p90 spread where measured; a speedup within the noise is not claimed.
import { bytes, dash, duration, latencyOf, msSpread, pct, realisedSize, si, signedPtsShort, speedupText } from '../format.js';
import { h } from '../ui.js';

const HEADERS = ['step', 'target', 'sparsity', 'accuracy', 'before fine-tune', 'drop', 'weights left', 'size', 'FLOPs', 'latency (p10–p90)', 'speedup', 'time'];

const num = (value, extra = {}) => h('td', { class: 'num', ...extra }, value);

export function stepsTable(steps, { selectedIndex, onSelect }) {
  return h('table', { class: 'steps', id: 'steps-table' },
    h('thead', {}, h('tr', {}, HEADERS.map(t => h('th', {}, t)))),
    h('tbody', {}, steps.map(s => {
      const lat = latencyOf(s);
      return h('tr', { class: s.index === selectedIndex ? 'selected' : '', 'data-step': s.index, onclick: () => onSelect(s.index) },
        num(s.index + 1), num(pct(s.target_sparsity)), num(pct(s.sparsity, 2)),
        num(pct(s.accuracy, 2)), num(pct(s.accuracy_before_finetune, 2)),
        num(s.accuracy_drop === undefined || s.accuracy_drop === null ? dash : signedPtsShort(s.accuracy_drop, 2)),
        num(si(s.params_nonzero)), num(bytes(realisedSize(s))),
        num(si(s.flops_effective)), num(msSpread(lat?.realised)),
        num(speedupText(lat, { range: false }), { class: `num speedup${lat?.significant === false ? ' noise' : ''}` }),
        num(duration(s.seconds)));
    })));
}
