// The run page's key figures at the inspected step: baseline and step accuracy, sparsity, size, FLOPs and
// latency, each against the dense model.
import { bytes, ms, pct, realisedSize, si, signedPts, times } from '../format.js';
import { fill, h } from '../ui.js';

function card(title, value, detail, id) {
  return h('div', { class: 'kpi', id }, h('div', { class: 'kpi-title' }, title), h('div', { class: 'kpi-value' }, value),
    h('div', { class: 'kpi-detail small muted' }, detail || ''));
}

export function drawRunCards(el, job, step) {
  const base = job.baseline;
  const lat = step?.latency || base?.latency;
  const size = step ? realisedSize(step) : null;
  fill(el,
    card('Baseline accuracy', pct(base?.accuracy), base ? `${si(base.params_total)} params${base.cached ? ' · cached baseline' : ''}` : 'training…', 'kpi-baseline'),
    card(step ? `Accuracy, step ${step.index + 1}` : 'Accuracy', pct(step?.accuracy),
      step && base ? `${signedPts(step.accuracy - base.accuracy)} vs baseline · best ${pct(job.summary?.best_accuracy)}` : '', 'kpi-accuracy'),
    card('Sparsity', pct(step?.sparsity), step ? `${si(step.params_nonzero)} of ${si(step.params_total)} weights left` : '', 'kpi-sparsity'),
    card('Size', step ? bytes(size) : bytes(base?.size_dense_bytes),
      step ? `dense ${bytes(step.size_dense_bytes)} · ${times(step.size_dense_bytes / size)} smaller` : 'dense fp32', 'kpi-size'),
    card('FLOPs / sample', si(step?.flops_effective ?? base?.flops),
      step ? `dense ${si(step.flops_dense)} · ${times(step.flops_dense / step.flops_effective)} fewer` : 'dense', 'kpi-flops'),
    card(`Latency${lat ? ` (${lat.device}, batch ${lat.batch_size})` : ''}`, step ? ms(lat?.realised_ms) : ms(lat?.dense_ms),
      step && lat ? `dense ${ms(lat.dense_ms)} · ${times(lat.speedup)} as ${lat.form}` : '', 'kpi-latency'));
}
