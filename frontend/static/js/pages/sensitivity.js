// #/sensitivity/ID: a sensitivity scan (each layer pruned alone to each sparsity, no fine-tuning) and the
// per-layer allocation chosen from it. The heatmap and the per-layer curves grow while the job runs. A goal
// slider (target sparsity) asks the server for the allocation (core/allocation's greedy, debounced);
// per-layer sliders change it by hand, the predictions then recomputed here from the grid by the same rule
// (each layer's curve linear between its scanned points, nothing removed and no drop at 0, the drops added).
// "Run this allocation" opens the New run form filled with it, linked back to this job.
import { api, ApiError, canWrite, getMe, problemText } from '../api.js';
import { draw, loadPlotly, purge } from '../charts.js';
import { isActive } from '../constants.js';
import { byLayer, curvesFigure, heatmapFigure } from '../figures/sensitivity.js';
import { bytes, pct } from '../format.js';
import { poller, subscribe } from '../live.js';
import { fill, h, progressBar, statusBadge } from '../ui.js';

// The New run form reads a spec handed over here (pages/new.js, ?allocation=ID).
export const HANDOFF_KEY = 'prunelab.allocation';
const DEBOUNCE_MS = 250;

// One layer's value at sparsity s: {drop, removed, flops}, linear between the scanned points.
function curveAt(rows, baselineVal, s) {
  const knots = [{ s: 0, drop: 0, removed: 0, flops: 0 },
    ...rows.map(r => ({ s: r.sparsity, drop: baselineVal - r.val_accuracy, removed: r.params_removed, flops: r.flops_removed }))];
  if (s <= 0) return knots[0];
  for (let i = 1; i < knots.length; i++) {
    const a = knots[i - 1];
    const b = knots[i];
    if (s <= b.s) {
      const w = (s - a.s) / (b.s - a.s || 1);
      return { drop: a.drop + w * (b.drop - a.drop), removed: a.removed + w * (b.removed - a.removed), flops: a.flops + w * (b.flops - a.flops) };
    }
  }
  return knots[knots.length - 1];
}

// Predicted effect of a per-layer map: {sparsity, removed, params, sizeBytes, flopReduction, drop}.
export function predict(grid, baselineVal, chosen) {
  let params = 0; let removed = 0; let flopsRemoved = 0; let drop = 0; let modelFlops = 0;
  for (const [layer, rows] of grid) {
    const at = curveAt(rows, baselineVal, chosen[layer] ?? 0);
    params += rows[0].layer_params;
    removed += at.removed;
    flopsRemoved += at.flops;
    drop += at.drop;
    modelFlops = Math.max(modelFlops, rows[0].model_flops || 0);
  }
  return {
    sparsity: params ? removed / params : 0, removed, params, sizeBytes: (params - removed) * 4,
    flopReduction: modelFlops > flopsRemoved ? modelFlops / (modelFlops - flopsRemoved) : null, drop,
    valAccuracy: baselineVal - drop,
  };
}

// The largest target sparsity the scan can reach: every layer at its largest scanned sparsity.
function reachable(grid) {
  let params = 0; let removed = 0;
  for (const rows of grid.values()) { params += rows[0].layer_params; removed += rows[rows.length - 1].params_removed; }
  return params ? removed / params : 0;
}

function debounce(fn, ms) {
  let timer = null;
  const run = (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  run.cancel = () => clearTimeout(timer);
  return run;
}

export async function render(root, { id }, { signal }) {
  loadPlotly().catch(() => {});
  let job;
  let me;
  try {
    [me, job] = await Promise.all([getMe().catch(() => null), api(`/api/jobs/${id}`, { signal })]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      root.append(h('section', { class: 'panel' }, h('h1', {}, `Run #${id} not found`), h('a', { href: '#/runs' }, 'Back to the runs')));
      return null;
    }
    throw err;
  }
  if (job.schedule !== 'sensitivity') {
    root.append(h('section', { class: 'panel' }, h('h1', {}, `Run #${id} is not a sensitivity scan`),
      h('p', {}, 'Its schedule is ', job.schedule, '. ', h('a', { href: `#/run/${id}` }, 'Open the run page'))));
    return null;
  }

  let sens = { points: [], layers: [], sparsities: [], baseline: null };
  let grid = new Map();
  let chosen = {};
  let lastSpec = null;
  let goal = null;

  const head = h('section', { class: 'run-head', id: 'sensitivity-head' });
  const heatEl = h('div', { id: 'sensitivity-heatmap', class: 'chart' });
  const heatBox = h('div', { class: 'sensitivity-scroll', style: { maxHeight: '640px', overflowY: 'auto' } }, heatEl);
  const curveEl = h('div', { id: 'sensitivity-curves', class: 'chart' });
  const goalInput = h('input', { type: 'range', id: 'goal-sparsity', min: 0, max: 0.95, step: 0.01, value: 0.9, 'aria-label': 'target sparsity' });
  const goalText = h('span', { id: 'goal-value', class: 'mono' }, '');
  const iterativeBox = h('input', { type: 'checkbox', id: 'alloc-iterative' });
  const predicted = h('div', { id: 'alloc-predicted', class: 'cards' });
  const layerBox = h('div', { id: 'alloc-layers', class: 'alloc-layers', style: { maxHeight: '480px', overflowY: 'auto' } });
  const allocError = h('div', { class: 'error-box', id: 'alloc-error', hidden: true });
  const runButton = h('button', { type: 'button', class: 'primary', id: 'run-allocation', disabled: true }, 'Run this allocation');
  if (!canWrite(me)) runButton.title = 'read only';

  const card = (title, note, ...body) => h('div', { class: 'card chart-card' }, h('div', { class: 'card-head' }, h('h2', {}, title), note), ...body);
  root.append(head,
    h('section', { class: 'chart-grid' },
      card('Accuracy drop by layer and sparsity', h('span', { class: 'small muted' }, 'each layer pruned alone, no fine-tuning; validation accuracy below the baseline; ◆ the allocation'), heatBox),
      card('Accuracy vs sparsity, each layer alone', h('span', { class: 'small muted' }, 'test accuracy; baseline dashed'), curveEl)),
    h('section', { class: 'card', id: 'allocation-card' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Allocation'),
        h('span', { class: 'small muted' }, 'greedy: each step raises the layer whose accuracy drop per removed weight is smallest')),
      h('div', { class: 'alloc-goal' },
        h('label', { for: 'goal-sparsity' }, 'target sparsity of the scanned layers '), goalInput, ' ', goalText, ' ',
        h('label', { class: 'small' }, iterativeBox, ' iterative (every layer moves toward its target each round)')),
      predicted, allocError, layerBox,
      h('div', { class: 'submit-bar' }, runButton,
        h('span', { class: 'small muted' }, 'The predicted drop adds the per-layer drops, each measured with the other layers unpruned: layers pruned together usually interact.'))));

  function drawHead() {
    document.title = `Sensitivity: ${job.name} #${job.id} · PruneLab`;
    fill(head,
      h('div', { class: 'run-title' },
        h('a', { href: `#/run/${job.id}`, class: 'back' }, '← Run page'),
        h('h1', {}, 'Sensitivity: ', job.name), h('span', { class: 'muted' }, `#${job.id}`), statusBadge(job.status)),
      h('div', { class: 'run-progress' }, progressBar(job), h('span', { class: 'small muted' }, job.message || '')),
      h('div', { class: 'run-meta small' },
        h('span', {}, h('b', {}, job.model), ` on ${job.dataset}`), h('span', {}, `method ${job.method}`),
        h('span', {}, `${sens.layers.length} layers scanned × ${sens.sparsities.length} sparsities`),
        sens.baseline ? h('span', {}, `baseline test ${pct(sens.baseline.accuracy)}, validation ${pct(sens.baseline.val_accuracy)}`) : null));
  }

  const baselineVal = () => sens.baseline?.val_accuracy ?? null;

  async function drawFigures() {
    if (baselineVal() === null) return;
    const heat = heatmapFigure({ points: sens.points, sparsities: sens.sparsities, baselineVal: baselineVal(), chosen });
    heatEl.style.height = `${heat.layout.height || 220}px`;
    await draw(heatEl, heat.data, heat.layout);
    const curves = curvesFigure({ points: sens.points, baseline: sens.baseline });
    await draw(curveEl, curves.data, curves.layout);
  }
  const redrawHeatmap = debounce(() => drawFigures().catch(() => {}), DEBOUNCE_MS);

  function drawPrediction() {
    if (baselineVal() === null || !grid.size) { fill(predicted, h('p', { class: 'muted' }, 'waiting for the first scanned layer…')); return; }
    const p = predict(grid, baselineVal(), chosen);
    const cell = (label, value, id) => h('div', { class: 'card metric' }, h('div', { class: 'small muted' }, label), h('div', { class: 'metric-value', id }, value));
    fill(predicted,
      cell('overall sparsity', pct(p.sparsity), 'pred-sparsity'),
      cell('FLOPs', p.flopReduction ? `÷${p.flopReduction.toFixed(2)}` : '–', 'pred-flops'),
      cell('kept weights (fp32)', bytes(p.sizeBytes), 'pred-size'),
      cell('predicted accuracy drop', `${(100 * p.drop).toFixed(1)} pts`, 'pred-drop'),
      cell('predicted validation accuracy', pct(p.valAccuracy), 'pred-accuracy'));
  }

  function drawLayerSliders() {
    fill(layerBox, h('table', { class: 'table alloc-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'layer'), h('th', {}, 'weights'), h('th', {}, 'sparsity'), h('th', {}, ''))),
      h('tbody', {}, [...grid.entries()].map(([layer, rows]) => {
        const value = chosen[layer] ?? 0;
        const shown = h('span', { class: 'mono', 'data-layer-value': layer }, pct(value));
        const slider = h('input', { type: 'range', min: 0, max: rows[rows.length - 1].sparsity, step: 0.01, value,
          'aria-label': `sparsity of ${layer}`, dataset: { layer } });
        slider.addEventListener('input', () => {
          chosen = { ...chosen, [layer]: Number(slider.value) };
          shown.textContent = pct(chosen[layer]);
          goal = 'by hand';
          goalText.textContent = `${pct(Number(goalInput.value), 0)} (adjusted by hand)`;
          drawPrediction();
          redrawHeatmap();
        });
        return h('tr', {}, h('td', { class: 'mono' }, layer), h('td', {}, String(rows[0].layer_params)), h('td', {}, slider), h('td', {}, shown));
      }))));
  }

  async function fetchAllocation() {
    const target = Number(goalInput.value);
    goalText.textContent = pct(target, 0);
    if (!grid.size) return;
    const query = new URLSearchParams({ target_sparsity: String(target), iterative: String(iterativeBox.checked) });
    try {
      const alloc = await api(`/api/jobs/${job.id}/allocation?${query}`, { signal });
      allocError.hidden = true;
      chosen = { ...alloc.layer_sparsity };
      lastSpec = alloc.spec;
      goal = target;
      runButton.disabled = !canWrite(me);
    } catch (err) {
      if (err.name === 'AbortError') return;
      allocError.textContent = err.errors?.length ? err.errors.map(e => problemText(e)).join('; ') : err.message;
      allocError.hidden = false;
    }
    drawLayerSliders();
    drawPrediction();
    redrawHeatmap();
  }
  const askAllocation = debounce(() => fetchAllocation(), DEBOUNCE_MS);
  goalInput.addEventListener('input', () => { goalText.textContent = pct(Number(goalInput.value), 0); askAllocation(); });
  iterativeBox.addEventListener('change', () => askAllocation());

  runButton.addEventListener('click', () => {
    if (!lastSpec) return;
    const spec = structuredClone(lastSpec);
    spec.method.layer_sparsity = Object.fromEntries([...grid.keys()].map(l => [l, Math.round((chosen[l] ?? 0) * 1e4) / 1e4]));
    const p = predict(grid, baselineVal(), chosen);
    if (spec.schedule.kind === 'oneshot') spec.schedule.sparsities = [Math.round(p.sparsity * 1e4) / 1e4];
    if (goal === 'by hand') spec.name = `${job.name} · allocation adjusted by hand`.slice(0, 200);
    sessionStorage.setItem(HANDOFF_KEY, JSON.stringify({ source_job_id: job.id, spec }));
    location.hash = `#/new?allocation=${job.id}`;
  });

  async function refresh() {
    const [nextJob, nextSens] = await Promise.all([api(`/api/jobs/${job.id}`, { signal }), api(`/api/jobs/${job.id}/sensitivity`, { signal })]);
    const grew = nextSens.points.length !== sens.points.length || !sens.baseline;
    job = nextJob;
    sens = nextSens;
    grid = byLayer(sens.points);
    goalInput.max = String(Math.floor(reachable(grid) * 100) / 100);
    drawHead();
    if (grew) {
      await drawFigures();
      await fetchAllocation();
    }
    return isActive(job.status);
  }

  const unsubscribe = subscribe(event => {
    if (event.type === 'reconnect' || (event.type === 'job' && event.data.id === job.id)) refresh().catch(() => {});
  });
  const poll = poller(refresh);
  drawHead();
  await refresh();
  return () => {
    unsubscribe();
    poll.stop();
    askAllocation.cancel();
    redrawHeatmap.cancel();
    [heatEl, curveEl].forEach(purge);
  };
}
