// The run page's key figures at the inspected step: baseline and step accuracy, sparsity, size, FLOPs and
// latency, each against the dense model. Latency carries its p10–p90 spread where the step has one, and the
// speedup is claimed only when the engine found it significant.
import { isActive } from '../constants.js';
import { bytes, latencyOf, ms, msRange, msSpread, pct, realisedSize, si, signedPts, speedupText, times } from '../format.js';
import { fill, h } from '../ui.js';

function card(title, value, detail, id) {
  return h('div', { class: 'kpi', id }, h('div', { class: 'kpi-title' }, title), h('div', { class: 'kpi-value' }, value),
    h('div', { class: 'kpi-detail small muted' }, detail || ''));
}

function latencyCard(step, base) {
  const lat = latencyOf(step) || latencyOf(base);
  const title = `Latency${lat?.device ? ` (${lat.device}, batch ${lat.batchSize})` : ''}`;
  if (!step || !lat) return card(title, ms(lat?.dense.ms), '', 'kpi-latency');
  const detail = h('span', {}, `dense ${msSpread(lat.dense)} · `,
    h('span', { class: lat.significant === false ? 'noise' : '', id: 'kpi-speedup', title: lat.significant === false
      ? 'the realised and dense timings overlap: no measurable speedup' : 'dense / realised latency' }, speedupText(lat)),
    lat.form ? ` as ${lat.form}` : '');
  const range = msRange(lat.realised);
  return card(title, h('span', {}, ms(lat.realised.ms), range ? h('span', { class: 'kpi-spread', title: 'p10–p90 of the repeated timings' }, ` ${range}`) : null),
    detail, 'kpi-latency');
}

export function drawRunCards(el, job, step) {
  const base = job.baseline;
  const size = step ? realisedSize(step) : null;
  const active = isActive(job.status);
  const baseDetail = base ? `${si(base.params_total)} params${base.cached ? ' · cached baseline' : ''}` : active ? 'training…' : 'no baseline stored';
  fill(el,
    card('Baseline accuracy', pct(base?.accuracy), baseDetail, 'kpi-baseline'),
    card(step ? `Accuracy, step ${step.index + 1}` : 'Accuracy', pct(step?.accuracy),
      step && base ? `${signedPts(step.accuracy - base.accuracy)} vs baseline · best ${pct(job.summary?.best_accuracy)}` : '', 'kpi-accuracy'),
    card('Sparsity', pct(step?.sparsity), step ? `${si(step.params_nonzero)} of ${si(step.params_total)} weights left` : '', 'kpi-sparsity'),
    card('Size', step ? bytes(size) : bytes(base?.size_dense_bytes),
      step ? `dense ${bytes(step.size_dense_bytes)} · ${times(step.size_dense_bytes / size)} smaller` : 'dense fp32', 'kpi-size'),
    card('FLOPs / sample', si(step?.flops_effective ?? base?.flops),
      step ? `dense ${si(step.flops_dense)} · ${times(step.flops_dense / step.flops_effective)} fewer` : 'dense', 'kpi-flops'),
    latencyCard(step, base));
}
