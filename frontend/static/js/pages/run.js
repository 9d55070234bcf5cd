// #/run/ID: one run, live while it runs. Status and progress, the sparsity-accuracy curve growing step by
// step, per-layer sparsity, dense vs realised size / FLOPs / latency, and the block-mask heatmap of any
// pruned layer with a slider over the steps. Cancel, retry, delete, clone, downloads.
import { api, ApiError, download, getMe } from '../api.js';
import { exportButtons } from '../run/exports.js';
import { draw, loadPlotly, onPointClick, purge } from '../charts.js';
import { isActive, methodColor } from '../constants.js';
import { runCurveFigure } from '../figures/run-curve.js';
import { trainingFigure } from '../figures/training.js';
import { denseVsRealisedFigure, LAYER_SCROLL_AT, layerChartHeight, layerSparsityFigure } from '../figures/run-bars.js';
import { poller, subscribe } from '../live.js';
import { drawRunCards } from '../run/cards.js';
import { drawRunHeader, updateRunProgress } from '../run/header.js';
import { maskViewer } from '../run/mask-viewer.js';
import { stepsTable } from '../tables/steps.js';
import { fill, h } from '../ui.js';

function notFound(root, id) {
  root.append(h('section', { class: 'panel' }, h('h1', {}, `Run #${id} not found`),
    h('p', {}, 'It may have been deleted. ', h('a', { href: '#/runs' }, 'Back to the runs'))));
  return null;
}

// Scroll a long layer list so the highlighted layer is visible (only when it is not already).
function keepInView(box, el) {
  const top = el.getBoundingClientRect().top - box.getBoundingClientRect().top;
  if (top < 0 || top > box.clientHeight - 20) box.scrollTop += top - box.clientHeight / 2;
}

const chartCard = (title, note, ...body) => h('div', { class: 'card chart-card' },
  h('div', { class: 'card-head' }, h('h2', {}, title), note), ...body);

export async function render(root, { id }, { signal }) {
  loadPlotly().catch(() => {}); // in parallel with the data
  let job;
  let me;
  try {
    [me, job] = await Promise.all([getMe().catch(() => null), api(`/api/jobs/${id}`, { signal })]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return notFound(root, id);
    throw err;
  }
  let steps = [];
  let selected = null; // step index the heatmap, layer chart and cards show; null: follow the latest
  let disposed = false;

  const color = () => methodColor(job.method);
  const latestIndex = () => (steps.length ? steps[steps.length - 1].index : null);
  const currentIndex = () => (selected ?? latestIndex());
  const currentStep = () => steps.find(s => s.index === currentIndex()) || null;

  const header = h('section', { class: 'run-head', id: 'run-head' });
  const cards = h('section', { class: 'cards', id: 'run-cards' });
  const curveEl = h('div', { id: 'curve', class: 'chart' });
  const layerEl = h('div', { id: 'layer-chart', class: 'chart chart-layers' });
  const layerBox = h('div', { class: 'layer-scroll', id: 'layer-scroll' }, layerEl);
  const layerNote = h('span', { class: 'small muted', id: 'layer-chart-step' }, '');
  const costEl = h('div', { id: 'cost-chart', class: 'chart chart-small' });
  const trainingEl = h('div', { id: 'training-chart', class: 'chart chart-small' });
  const trainingNote = h('span', { class: 'small muted', id: 'training-chart-step' }, '');
  const stepsBox = h('div', { class: 'table-box', id: 'steps-box' });
  const downloads = h('div', { class: 'downloads', id: 'downloads' });
  const specBox = h('pre', { class: 'spec-preview' });
  const mask = maskViewer({
    jobId: job.id, signal, color, method: () => job.method, steps: () => steps, currentIndex,
    select: index => { selected = index === latestIndex() ? null : index; },
    inspect: () => inspect(),
    onLayer: () => drawLayerChart(),
    emptyNote: () => (isActive(job.status) ? 'masks appear after the first step' : 'no masks stored'),
  });

  const figures = h('section', { class: 'chart-grid', id: 'run-figures' },
      chartCard('Sparsity vs accuracy', h('span', { class: 'small muted' }, 'after fine-tuning (line), right after pruning (open), baseline (dashed); click a point to inspect it'), curveEl),
      chartCard('Mask heatmap', [mask.layerSelect, mask.playButton, h('label', { class: 'slider' }, mask.slider), mask.caption], mask.heatmap),
      chartCard('Per-layer sparsity', layerNote, layerBox),
      chartCard('Dense vs realised', h('span', { class: 'small muted' }, '% of the dense model at the inspected step; bars: p10–p90 of the timings'), costEl),
      chartCard('Training curves', trainingNote, trainingEl));
  const stepsCard = h('section', { class: 'card', id: 'steps-card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Steps'), downloads), stepsBox);
  root.append(header, cards, figures, stepsCard, h('details', { class: 'card spec-details' }, h('summary', {}, 'Spec'), specBox));

  // A run that failed before its first step will draw nothing: its error (in the head) takes the figures' place.
  function showFailure() {
    const nothing = job.status === 'failed' && !steps.length;
    cards.hidden = nothing && !job.baseline;
    figures.hidden = nothing;
    stepsCard.hidden = nothing;
  }

  function drawHeader() {
    drawRunHeader(header, { job, me, signal, onChanged: next => { job = next; drawHeader(); poll.hurry(); } });
    specBox.textContent = JSON.stringify(job.spec, null, 2);
    showFailure();
  }

  // ------------------------------------------------------------ charts and tables of the inspected step

  async function drawCurve() {
    const { data, layout } = runCurveFigure({ steps, baseline: job.baseline?.accuracy, inspected: currentStep(), color: color(),
      emptyNote: isActive(job.status) ? 'waiting for the first pruning step…' : 'no steps stored' });
    onPointClick(await draw(curveEl, data, layout), point => { if (point.customdata !== undefined) selectStep(point.customdata); });
  }

  async function drawLayerChart() {
    const step = currentStep();
    const n = step?.layers?.length || 0;
    layerNote.textContent = step ? `step ${step.index + 1}, ${n} layers; the heatmap's layer is outlined; click a bar to see its mask` : '';
    layerEl.style.height = `${layerChartHeight(n)}px`;
    layerBox.classList.toggle('scrolls', n > LAYER_SCROLL_AT);
    const { data, layout } = layerSparsityFigure({ step, highlighted: mask.layer(), color: color() });
    layerEl.dataset.highlighted = mask.layer() || '';
    onPointClick(await draw(layerEl, data, layout), point => { if (point.y) mask.setLayer(point.y); });
    const row = layerEl.querySelectorAll('.ytick')[step?.layers?.findIndex(l => l.name === mask.layer()) ?? -1];
    if (row && layerBox.classList.contains('scrolls')) keepInView(layerBox, row);
  }

  function drawCostChart() {
    const { data, layout } = denseVsRealisedFigure({ step: currentStep(), color: color() });
    return draw(costEl, data, layout);
  }

  // The baseline's training and the inspected step's fine-tuning, epoch by epoch.
  function drawTraining() {
    const step = currentStep();
    trainingNote.textContent = `baseline training${step ? ` and the fine-tuning of step ${step.index + 1}` : ''}; accuracy on the validation split, loss (dotted) on the right axis`;
    const { data, layout } = trainingFigure({ baseline: job.baseline?.history, step, color: color() });
    return draw(trainingEl, data, layout);
  }

  function drawStepsTable() {
    if (!steps.length) {
      fill(stepsBox, h('p', { class: 'muted pad' }, isActive(job.status) ? 'No step yet: the baseline is being trained or loaded.' : 'No steps stored.'));
      return;
    }
    fill(stepsBox, stepsTable(steps, { selectedIndex: currentIndex(), onSelect: selectStep }));
  }

  function drawDownloads() {
    const index = currentIndex();
    const file = (id, label, path, name, disabled = false) => h('button', { type: 'button', class: 'secondary small-button', id, disabled,
      onclick: () => download(path, name).catch(() => {}) }, label);
    fill(downloads,
      h('span', { class: 'small muted' }, 'Download'),
      file('download-csv', 'CSV', `/api/jobs/${job.id}/export.csv`, `prunelab-run-${job.id}.csv`),
      file('download-json', 'JSON', `/api/jobs/${job.id}/export.json`, `prunelab-run-${job.id}.json`),
      file('download-checkpoint', index === null ? 'checkpoint' : `checkpoint of step ${index + 1}`,
        `/api/jobs/${job.id}/checkpoint?step=${index}`, `prunelab-run-${job.id}-step-${index + 1}.pt`, index === null),
      exportButtons(job.id, index === null ? null : index + 1, { isStopped: () => signal.aborted }));
  }

  function selectStep(index) {
    selected = index === latestIndex() ? null : index;
    mask.drawSlider();
    inspect();
  }

  // Everything that shows "the inspected step".
  function inspect() {
    showFailure();
    mask.drawLayerOptions(currentStep() || steps[steps.length - 1]);
    drawRunCards(cards, job, currentStep());
    drawStepsTable();
    drawDownloads();
    return Promise.all([mask.show(), drawLayerChart(), drawCostChart(), drawCurve(), drawTraining()]);
  }

  // ------------------------------------------------------------ data and live updates

  let stepsRequest = null;
  let stepsAgain = false;
  // New steps only (?after=N); never two requests at once, a request asked for meanwhile runs right after.
  async function fetchNewSteps() {
    if (stepsRequest) { stepsAgain = true; return stepsRequest; }
    stepsRequest = (async () => {
      do {
        stepsAgain = false;
        const after = latestIndex();
        const data = await api(`/api/jobs/${job.id}/steps${after === null ? '' : `?after=${after}`}`, { signal });
        const known = new Set(steps.map(s => s.index));
        const fresh = data.items.filter(s => !known.has(s.index));
        if (fresh.length) {
          steps = [...steps, ...fresh].sort((a, b) => a.index - b.index);
          mask.drawSlider();
          await inspect();
        }
      } while (stepsAgain && !disposed);
    })().finally(() => { stepsRequest = null; });
    return stepsRequest;
  }

  function jobChanged(next) {
    const before = job;
    job = next;
    if (before.status !== job.status || before.baseline?.accuracy !== job.baseline?.accuracy || before.error !== job.error) {
      drawHeader(); drawCurve(); drawTraining(); drawRunCards(cards, job, currentStep());
    } else updateRunProgress(header, job);
    if ((job.summary?.steps || 0) > steps.length) fetchNewSteps().catch(() => {});
  }

  const unsubscribe = subscribe(event => {
    if (event.type === 'reconnect') { refresh().catch(() => {}); return; }
    if (event.type === 'job' && event.data.id === job.id) jobChanged(event.data);
    if (event.type === 'step' && event.data.job_id === job.id) fetchNewSteps().catch(() => {});
  });

  async function refresh() {
    jobChanged(await api(`/api/jobs/${job.id}`, { signal }));
    await fetchNewSteps();
    return isActive(job.status);
  }
  const poll = poller(refresh);

  drawHeader();
  drawRunCards(cards, job, null);
  drawStepsTable();
  drawDownloads();
  await fetchNewSteps();
  if (!steps.length) await Promise.all([drawCurve(), mask.show(), drawLayerChart(), drawCostChart(), drawTraining()]);

  return () => {
    disposed = true;
    unsubscribe();
    poll.stop();
    mask.dispose();
    [curveEl, layerEl, costEl, trainingEl, mask.heatmap].forEach(purge);
  };
}
