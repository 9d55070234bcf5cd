// #/run/ID: one run, live while it runs. Status and progress, the sparsity-accuracy curve growing step by
// step, per-layer sparsity, dense vs realised size / FLOPs / latency, and the block-mask heatmap of any
// pruned layer with a slider over the steps. Cancel, retry, delete, clone, downloads.
import { api, ApiError, canModify, canWrite, download, getMe, readOnlyReason } from '../api.js';
import { axis, baseLayout, draw, loadPlotly, purge } from '../charts.js';
import { poller, subscribe } from '../live.js';
import { loadSelection } from './runs.js';
import {
  ago, bytes, clear, fill, dash, duration, h, methodChip, methodColor, methodSummary, ms, pct, progressBar, runTime,
  scheduleSummary, si, signedPts, statusBadge, times, tint,
} from '../ui.js';

const ACTIVE = new Set(['queued', 'running']);

export async function render(root, { id }, { signal }) {
  loadPlotly().catch(() => {}); // in parallel with the data
  let job;
  let me;
  try {
    [me, job] = await Promise.all([getMe().catch(() => null), api(`/api/jobs/${id}`, { signal })]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      root.append(h('section', { class: 'panel' }, h('h1', {}, `Run #${id} not found`),
        h('p', {}, 'It may have been deleted. ', h('a', { href: '#/runs' }, 'Back to the runs'))));
      return null;
    }
    throw err;
  }
  let steps = [];
  let selected = null;      // step index shown by the heatmap, layer chart and cards; null: follow the latest
  let layer = null;          // layer shown by the heatmap
  const masks = new Map();   // "layer@step" -> mask response
  let disposed = false;

  const color = () => methodColor(job.method);
  const latestIndex = () => (steps.length ? steps[steps.length - 1].index : null);
  const currentIndex = () => (selected ?? latestIndex());
  const currentStep = () => steps.find(s => s.index === currentIndex()) || null;

  // ------------------------------------------------------------ layout

  const header = h('section', { class: 'run-head', id: 'run-head' });
  const cards = h('section', { class: 'cards', id: 'run-cards' });
  const curveEl = h('div', { id: 'curve', class: 'chart' });
  const layerEl = h('div', { id: 'layer-chart', class: 'chart chart-small' });
  const costEl = h('div', { id: 'cost-chart', class: 'chart chart-small' });
  const heatmapEl = h('div', { id: 'heatmap', class: 'chart' });
  const layerSelect = h('select', { id: 'mask-layer', 'aria-label': 'layer', onchange: () => { layer = layerSelect.value; showMask(); } });
  const slider = h('input', { id: 'mask-step', type: 'range', min: 0, max: 0, value: 0, step: 1, 'aria-label': 'step' });
  const playButton = h('button', { type: 'button', class: 'secondary small-button', id: 'mask-play', title: 'play the steps' }, '▶');
  const maskLabel = h('div', { id: 'mask-label', class: 'small muted' }, '');
  const stepsBox = h('div', { class: 'table-box', id: 'steps-box' });
  const downloads = h('div', { class: 'downloads', id: 'downloads' });
  const specBox = h('pre', { class: 'spec-preview' });

  root.append(
    header, cards,
    h('section', { class: 'chart-grid' },
      h('div', { class: 'card chart-card' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Sparsity vs accuracy'),
          h('span', { class: 'small muted' }, 'after fine-tuning (line), right after pruning (open), baseline (dashed); click a point to inspect it')),
        curveEl),
      h('div', { class: 'card chart-card' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Mask heatmap'), layerSelect, playButton,
          h('label', { class: 'slider' }, slider), maskLabel),
        heatmapEl),
      h('div', { class: 'card chart-card' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Per-layer sparsity'), h('span', { class: 'small muted', id: 'layer-chart-step' }, '')),
        layerEl),
      h('div', { class: 'card chart-card' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Dense vs realised'), h('span', { class: 'small muted' }, '% of the dense model, at the inspected step')),
        costEl)),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Steps'), downloads), stepsBox),
    h('details', { class: 'card spec-details' }, h('summary', {}, 'Spec'), specBox));

  // ------------------------------------------------------------ header, actions, cards

  function actionButton(label, handler, extra = {}) {
    return h('button', { type: 'button', class: 'secondary', ...extra, onclick: async event => {
      const button = event.currentTarget;
      button.disabled = true;
      try { await handler(); } catch (err) { if (err.name !== 'AbortError') showActionError(err); } finally { button.disabled = false; }
    } }, label);
  }

  function showActionError(err) {
    header.querySelector('.action-error')?.remove();
    if (err.status === 401 || err.status === 403) return; // the page banner says it already
    header.append(h('div', { class: 'error-box action-error' }, err.message));
  }

  function deleteButton() {
    const box = h('span', { class: 'confirm' });
    const ask = h('button', { type: 'button', class: 'danger-outline', id: 'delete-run', onclick: () => {
      fill(box, h('span', { class: 'small' }, 'Delete this run, its steps and checkpoints? '),
        actionButton('Delete', async () => {
          await api(`/api/jobs/${job.id}`, { method: 'DELETE', signal });
          const selection = loadSelection(); selection.delete(job.id);
          sessionStorage.setItem('prunelab.selection', JSON.stringify([...selection]));
          location.hash = '#/runs';
        }, { class: 'danger', id: 'delete-confirm' }),
        h('button', { type: 'button', class: 'link-button', onclick: () => fill(box, ask) }, 'keep it'));
    } }, 'Delete');
    box.append(ask);
    return box;
  }

  // Buttons the server would refuse are not shown: readers may not write, only the owner or an admin may
  // change a run.
  function lockedNote() {
    if (canModify(me, job)) return null;
    const why = canWrite(me) ? `this run belongs to ${job.owner || 'nobody'}; only its owner or an admin may change it`
      : readOnlyReason(me);
    return h('span', { class: 'muted read-only-note', id: 'read-only-note', title: why },
      canWrite(me) ? `owned by ${job.owner || 'nobody'}` : 'read only');
  }

  function drawHeader() {
    const active = ACTIVE.has(job.status);
    const mayChange = canModify(me, job);
    document.title = `${job.name} #${job.id} (${job.status}) · PruneLab`;
    const spec = job.spec || {};
    const seconds = runTime(job);
    fill(header, 
      h('div', { class: 'run-title' },
        h('a', { href: '#/runs', class: 'back' }, '← Runs'),
        h('h1', {}, job.name), h('span', { class: 'muted' }, `#${job.id}`), statusBadge(job.status),
        h('div', { class: 'spacer' }),
        lockedNote(),
        active && mayChange ? actionButton('Cancel', async () => { job = await api(`/api/jobs/${job.id}/cancel`, { method: 'POST', signal }); drawHeader(); }, { id: 'cancel-run' }) : null,
        mayChange && (job.status === 'failed' || job.status === 'cancelled')
          ? actionButton('Retry', async () => { job = await api(`/api/jobs/${job.id}/retry`, { method: 'POST', signal }); drawHeader(); poll.hurry(); }, { id: 'retry-run' }) : null,
        canWrite(me) ? h('a', { class: 'button secondary', id: 'clone-run', href: `#/new?from=${job.id}`, title: 'a new run with this spec, to change and submit' }, 'Clone') : null,
        h('a', { class: 'button secondary', id: 'compare-with', title: 'compare with the runs selected in the list',
          href: `#/compare?ids=${[...new Set([...loadSelection(), job.id])].sort((a, b) => a - b).join(',')}` }, 'Compare'),
        mayChange ? deleteButton() : null),
      h('div', { class: 'run-progress' }, progressBar(job),
        h('span', { class: 'small muted', id: 'run-message' }, job.message || '')),
      h('div', { class: 'run-meta small' },
        h('span', {}, h('b', {}, job.model), ` on ${job.dataset}`), methodChip(job.method),
        h('span', {}, methodSummary(spec)), h('span', {}, scheduleSummary(spec)),
        h('span', { class: 'muted' }, `created ${ago(job.created_at)}`),
        seconds !== null ? h('span', { class: 'muted' }, `${job.finished_at ? 'ran' : 'running for'} ${duration(seconds)}`) : null,
        job.owner ? h('span', { class: 'muted' }, `by ${job.owner}`) : null,
        job.attempts > 1 ? h('span', { class: 'muted', title: 'times a worker started this run (retries, crash recovery)' }, `attempt ${job.attempts}`) : null,
        (job.tags || []).map(tag => h('a', { class: 'tag', href: `#/runs?tag=${encodeURIComponent(tag)}` }, tag))),
      job.status === 'failed' ? h('div', { class: 'error-box job-error', id: 'job-error' },
        h('b', {}, 'This run failed: '), h('pre', {}, job.error || 'no error text was stored')) : null);
    specBox.textContent = JSON.stringify(job.spec, null, 2);
  }

  function card(title, value, detail, id) {
    return h('div', { class: 'kpi', id }, h('div', { class: 'kpi-title' }, title), h('div', { class: 'kpi-value' }, value),
      h('div', { class: 'kpi-detail small muted' }, detail || ''));
  }

  function drawCards() {
    const step = currentStep();
    const base = job.baseline;
    const lat = step?.latency || base?.latency;
    const sizeRealised = step ? Math.min(step.size_sparse_bytes ?? Infinity, step.size_compact_bytes ?? Infinity) : null;
    fill(cards, 
      card('Baseline accuracy', pct(base?.accuracy), base ? `${si(base.params_total)} params${base.cached ? ' · cached baseline' : ''}` : 'training…', 'kpi-baseline'),
      card(step ? `Accuracy, step ${step.index + 1}` : 'Accuracy', pct(step?.accuracy),
        step && base ? `${signedPts(step.accuracy - base.accuracy)} vs baseline · best ${pct(job.summary?.best_accuracy)}` : '', 'kpi-accuracy'),
      card('Sparsity', pct(step?.sparsity), step ? `${si(step.params_nonzero)} of ${si(step.params_total)} weights left` : '', 'kpi-sparsity'),
      card('Size', step ? bytes(sizeRealised) : bytes(base?.size_dense_bytes),
        step ? `dense ${bytes(step.size_dense_bytes)} · ${times(step.size_dense_bytes / sizeRealised)} smaller` : 'dense fp32', 'kpi-size'),
      card('FLOPs / sample', si(step?.flops_effective ?? base?.flops),
        step ? `dense ${si(step.flops_dense)} · ${times(step.flops_dense / step.flops_effective)} fewer` : 'dense', 'kpi-flops'),
      card(`Latency${lat ? ` (${lat.device}, batch ${lat.batch_size})` : ''}`, step ? ms(lat?.realised_ms) : ms(lat?.dense_ms),
        step && lat ? `dense ${ms(lat.dense_ms)} · ${times(lat.speedup)} as ${lat.form}` : '', 'kpi-latency'));
  }

  // ------------------------------------------------------------ charts

  function drawCurve() {
    const sorted = [...steps].sort((a, b) => a.sparsity - b.sparsity);
    const x = sorted.map(s => s.sparsity * 100);
    const hover = sorted.map(s => `step ${s.index + 1}: target ${pct(s.target_sparsity)}<br>sparsity ${pct(s.sparsity, 2)}<br>`
      + `after fine-tuning ${pct(s.accuracy, 2)}<br>right after pruning ${pct(s.accuracy_before_finetune, 2)}`
      + `${s.latency?.speedup ? `<br>speedup ${times(s.latency.speedup)}` : ''}`);
    const base = job.baseline?.accuracy;
    const data = [
      { name: 'after fine-tuning', x, y: sorted.map(s => s.accuracy * 100), customdata: sorted.map(s => s.index),
        mode: 'lines+markers', line: { color: color(), width: 2.5 }, marker: { size: 8, color: color() }, text: hover, hoverinfo: 'text' },
      { name: 'right after pruning', x, y: sorted.map(s => (s.accuracy_before_finetune ?? s.accuracy) * 100), customdata: sorted.map(s => s.index),
        mode: 'lines+markers', line: { color: tint(color(), 0.45), width: 1, dash: 'dot' },
        marker: { size: 8, symbol: 'circle-open', color: color(), line: { width: 1.5 } }, text: hover, hoverinfo: 'text' },
      { name: base !== undefined && base !== null ? `baseline ${pct(base, 2)}` : 'baseline (training…)', x: [0, 100],
        y: base !== undefined && base !== null ? [base * 100, base * 100] : [null, null],
        mode: 'lines', line: { color: '#475569', width: 1.5, dash: 'dash' }, hoverinfo: 'name' },
    ];
    const inspected = currentStep();
    const shapes = inspected ? [{ type: 'line', xref: 'x', yref: 'paper', x0: inspected.sparsity * 100, x1: inspected.sparsity * 100,
      y0: 0, y1: 1, line: { color: '#94a3b8', width: 1, dash: 'dot' } }] : [];
    const ys = data.flatMap(t => t.y).filter(v => v !== null && v !== undefined);
    const low = ys.length ? Math.max(0, Math.min(...ys) - 3) : 0;
    const layout = baseLayout({
      xaxis: axis('sparsity of the pruned layers (%)', { range: [-2, 102] }),
      yaxis: axis('test accuracy (%)', { range: [low, Math.min(100.5, (ys.length ? Math.max(...ys) : 100) + 2)] }),
      shapes,
      annotations: steps.length ? [] : [{ text: ACTIVE.has(job.status) ? 'waiting for the first pruning step…' : 'no steps stored',
        xref: 'paper', yref: 'paper', x: 0.5, y: 0.5, showarrow: false, font: { color: '#64748b', size: 13 } }],
    });
    return draw(curveEl, data, layout).then(el => {
      if (el && !el.dataset.clickBound) {
        el.dataset.clickBound = '1';
        el.on('plotly_click', ev => { const index = ev.points?.[0]?.customdata; if (index !== undefined) selectStep(index); });
      }
    });
  }

  function drawLayerChart() {
    const step = currentStep();
    document.getElementById('layer-chart-step').textContent = step ? `step ${step.index + 1}; click a bar to see its mask` : '';
    const layers = step?.layers || [];
    const data = [
      { type: 'bar', name: 'sparsity', x: layers.map(l => l.name), y: layers.map(l => l.sparsity * 100),
        marker: { color: layers.map(l => (l.name === layer ? color() : tint(color(), 0.35))) },
        text: layers.map(l => pct(l.sparsity)), textposition: 'outside', cliponaxis: false,
        hovertext: layers.map(l => `${l.name} (${l.kind}, ${(l.shape || []).join('×')})<br>${si(l.nonzero)} of ${si(l.params)} weights kept`),
        hoverinfo: 'text' },
      { type: 'scatter', mode: 'markers', name: 'target', x: layers.map(l => l.name), y: layers.map(l => (l.target_sparsity ?? null) === null ? null : l.target_sparsity * 100),
        marker: { symbol: 'line-ew-open', size: 22, color: '#0f172a', line: { width: 2 } }, hovertemplate: 'target %{y:.1f}%<extra></extra>' },
    ];
    const layout = baseLayout({ showlegend: false, bargap: 0.35, margin: { l: 48, r: 8, t: 18, b: 48 },
      xaxis: axis('', { type: 'category', automargin: true }), yaxis: axis('sparsity (%)', { range: [0, 105] }) });
    return draw(layerEl, data, layout).then(el => {
      if (el && !el.dataset.clickBound) {
        el.dataset.clickBound = '1';
        el.on('plotly_click', ev => { const name = ev.points?.[0]?.x; if (name) { layer = name; layerSelect.value = name; showMask(); drawLayerChart(); } });
      }
    });
  }

  function drawCostChart() {
    const step = currentStep();
    if (!step) return draw(costEl, [], baseLayout({ xaxis: axis('', { visible: false }), yaxis: axis('', { visible: false }),
      annotations: [{ text: 'no step yet', xref: 'paper', yref: 'paper', x: 0.5, y: 0.5, showarrow: false, font: { color: '#64748b' } }] }));
    const lat = step.latency || {};
    const sizeRealised = Math.min(step.size_sparse_bytes ?? Infinity, step.size_compact_bytes ?? Infinity);
    const rows = [
      ['latency', lat.dense_ms, lat.realised_ms, ms, lat.form ? `as ${lat.form}` : ''],
      ['FLOPs', step.flops_dense, step.flops_effective, si, 'zeros skipped'],
      ['size', step.size_dense_bytes, sizeRealised, bytes, ''],
      ['weights', step.params_total, step.params_nonzero, si, 'non-zero'],
    ].filter(r => r[1]);
    const share = r => (r[2] / r[1]) * 100;
    const data = [
      { type: 'bar', orientation: 'h', name: 'dense', y: rows.map(r => r[0]), x: rows.map(() => 100), marker: { color: '#cbd5e1' },
        text: rows.map(r => r[3](r[1])), textposition: 'inside', insidetextanchor: 'end', hovertemplate: '%{y} dense: %{text}<extra></extra>' },
      { type: 'bar', orientation: 'h', name: 'realised', y: rows.map(r => r[0]), x: rows.map(share), marker: { color: color() },
        text: rows.map(r => `${r[3](r[2])} (${share(r).toFixed(0)}%)`), textposition: 'auto', insidetextanchor: 'end',
        hovertext: rows.map(r => `${r[0]} realised: ${r[3](r[2])} ${r[4]}`), hoverinfo: 'text' },
    ];
    const layout = baseLayout({ barmode: 'group', bargap: 0.25, margin: { l: 64, r: 12, t: 8, b: 40 },
      legend: { orientation: 'h', x: 0, y: -0.18 }, xaxis: axis('% of dense', { range: [0, 105] }),
      yaxis: axis('', { autorange: 'reversed' }) });
    return draw(costEl, data, layout);
  }

  // ------------------------------------------------------------ heatmap

  let maskRequest = 0;
  async function showMask() {
    const index = currentIndex();
    const ticket = ++maskRequest;
    if (index === null || !layer) {
      maskLabel.textContent = ACTIVE.has(job.status) ? 'masks appear after the first step' : 'no masks stored';
      return draw(heatmapEl, [], baseLayout({ xaxis: axis('', { visible: false }), yaxis: axis('', { visible: false }) }));
    }
    const key = `${layer}@${index}`;
    let mask = masks.get(key);
    if (!mask) {
      heatmapEl.classList.add('stale');
      try {
        mask = await api(`/api/jobs/${job.id}/layers/${encodeURIComponent(layer)}/mask?step=${index}`, { signal });
        masks.set(key, mask);
      } catch (err) {
        if (ticket === maskRequest && err.name !== 'AbortError') maskLabel.textContent = err.message;
        return null;
      } finally {
        if (ticket === maskRequest) heatmapEl.classList.remove('stale');
      }
    }
    if (ticket !== maskRequest || disposed) return null; // the slider has moved on
    const [cellRows, cellCols] = mask.cell;
    const rows = mask.values.length, cols = mask.values[0]?.length || 0;
    const x = Array.from({ length: cols }, (_, j) => j * cellCols);
    const y = Array.from({ length: rows }, (_, i) => i * cellRows);
    const blocks = mask.kind === 'blocks';
    const data = [{
      type: 'heatmap', z: mask.values, x, y, zmin: 0, zmax: 1, xgap: blocks && cols <= 64 && rows <= 64 ? 1 : 0, ygap: blocks && cols <= 64 && rows <= 64 ? 1 : 0,
      colorscale: [[0, '#f1f5f9'], [1, color()]], showscale: !blocks,
      colorbar: { title: { text: 'kept', side: 'right' }, thickness: 10, len: 0.9, tickformat: '.0%' },
      hovertemplate: blocks ? 'out %{y}, in %{x}: %{text}<extra></extra>' : 'out %{y}, in %{x}: %{z:.0%} kept<extra></extra>',
      text: blocks ? mask.values.map(r => r.map(v => (v ? 'kept' : 'pruned'))) : undefined,
    }];
    const shape = (mask.weight_shape || []).join('×');
    const layout = baseLayout({ margin: { l: 48, r: 12, t: 8, b: 40 },
      xaxis: axis('input (weight column)', { showgrid: false, zeroline: false }),
      yaxis: axis('output (weight row)', { autorange: 'reversed', showgrid: false, zeroline: false }) });
    await draw(heatmapEl, data, layout);
    if (ticket !== maskRequest) return null;
    const step = steps.find(s => s.index === index);
    maskLabel.textContent = `step ${index + 1}/${steps.length} · ${layer} ${shape} · ${blocks ? `${mask.cell.join('×')} blocks` : `${mask.cell.join('×')} weights per cell`}`
      + ` · ${pct(mask.sparsity)} pruned${step ? ` · accuracy ${pct(step.accuracy)}` : ''}`;
    heatmapEl.dataset.step = String(index);
    heatmapEl.dataset.layer = layer;
    return mask;
  }

  function drawLayerOptions() {
    const step = currentStep() || steps[steps.length - 1];
    const names = (step?.layers || []).map(l => l.name);
    if (!names.length) { clear(layerSelect); layerSelect.disabled = true; return; }
    layerSelect.disabled = false;
    if (!layer || !names.includes(layer)) layer = names[0];
    const same = [...layerSelect.options].map(o => o.value).join() === names.join();
    if (!same) fill(layerSelect, names.map(n => h('option', { value: n }, n)));
    layerSelect.value = layer;
  }

  function drawSlider() {
    slider.max = String(Math.max(0, steps.length - 1));
    slider.disabled = steps.length < 2;
    const position = steps.findIndex(s => s.index === currentIndex());
    slider.value = String(Math.max(0, position));
    playButton.disabled = steps.length < 2;
  }

  slider.addEventListener('input', () => {
    const step = steps[Number(slider.value)];
    if (!step) return;
    selected = step.index === latestIndex() ? null : step.index;
    inspect();
  });

  let playing = null;
  playButton.addEventListener('click', () => {
    if (playing) { clearTimeout(playing); playing = null; playButton.textContent = '▶'; return; }
    playButton.textContent = '❚❚';
    let position = Number(slider.value) >= steps.length - 1 ? 0 : Number(slider.value);
    const next = async () => {
      if (disposed || !playing) return;
      selected = steps[position].index;
      slider.value = String(position);
      await inspect();
      position += 1;
      if (position < steps.length) playing = setTimeout(next, 600);
      else { playing = null; playButton.textContent = '▶'; selected = null; }
    };
    playing = setTimeout(next, 0);
  });

  function selectStep(index) {
    selected = index === latestIndex() ? null : index;
    drawSlider();
    inspect();
  }

  // Everything that shows "the inspected step".
  function inspect() {
    drawLayerOptions();
    drawCards();
    drawStepsTable();
    drawDownloads();
    return Promise.all([showMask(), drawLayerChart(), drawCostChart(), drawCurve()]);
  }

  // ------------------------------------------------------------ steps table, downloads

  function drawStepsTable() {
    if (!steps.length) { fill(stepsBox, h('p', { class: 'muted pad' }, ACTIVE.has(job.status) ? 'No step yet: the baseline is being trained or loaded.' : 'No steps stored.')); return; }
    const current = currentIndex();
    fill(stepsBox, h('table', { class: 'steps', id: 'steps-table' },
      h('thead', {}, h('tr', {}, ['step', 'target', 'sparsity', 'accuracy', 'before fine-tune', 'drop', 'weights left', 'size', 'FLOPs', 'latency', 'speedup', 'time']
        .map(t => h('th', {}, t)))),
      h('tbody', {}, steps.map(s => h('tr', { class: s.index === current ? 'selected' : '', 'data-step': s.index, onclick: () => selectStep(s.index) },
        h('td', { class: 'num' }, s.index + 1), h('td', { class: 'num' }, pct(s.target_sparsity)), h('td', { class: 'num' }, pct(s.sparsity, 2)),
        h('td', { class: 'num' }, pct(s.accuracy, 2)), h('td', { class: 'num' }, pct(s.accuracy_before_finetune, 2)),
        h('td', { class: 'num' }, s.accuracy_drop === undefined || s.accuracy_drop === null ? dash : signedPts(s.accuracy_drop, 2).replace(' pts', '')),
        h('td', { class: 'num' }, si(s.params_nonzero)), h('td', { class: 'num' }, bytes(Math.min(s.size_sparse_bytes ?? Infinity, s.size_compact_bytes ?? Infinity))),
        h('td', { class: 'num' }, si(s.flops_effective)), h('td', { class: 'num' }, ms(s.latency?.realised_ms)),
        h('td', { class: 'num' }, times(s.latency?.speedup)), h('td', { class: 'num' }, duration(s.seconds)))))));
  }

  function drawDownloads() {
    const index = currentIndex();
    const fetchFile = (path, name) => download(path, name).catch(() => {});
    fill(downloads, 
      h('span', { class: 'small muted' }, 'Download'),
      h('button', { type: 'button', class: 'secondary small-button', id: 'download-csv', onclick: () => fetchFile(`/api/jobs/${job.id}/export.csv`, `prunelab-run-${job.id}.csv`) }, 'CSV'),
      h('button', { type: 'button', class: 'secondary small-button', id: 'download-json', onclick: () => fetchFile(`/api/jobs/${job.id}/export.json`, `prunelab-run-${job.id}.json`) }, 'JSON'),
      h('button', { type: 'button', class: 'secondary small-button', id: 'download-checkpoint', disabled: index === null,
        onclick: () => fetchFile(`/api/jobs/${job.id}/checkpoint?step=${index}`, `prunelab-run-${job.id}-step-${index}.pt`) },
      index === null ? 'checkpoint' : `checkpoint of step ${index + 1}`));
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
          drawSlider();
          await inspect();
        }
      } while (stepsAgain && !disposed);
    })().finally(() => { stepsRequest = null; });
    return stepsRequest;
  }

  function jobChanged(next) {
    const before = job;
    job = next;
    if (before.status !== job.status || before.baseline?.accuracy !== job.baseline?.accuracy || before.error !== job.error) { drawHeader(); drawCurve(); drawCards(); }
    else {
      header.querySelector('.progress')?.replaceWith(progressBar(job));
      const message = header.querySelector('#run-message');
      if (message) message.textContent = job.message || '';
    }
    if ((job.summary?.steps || 0) > steps.length) fetchNewSteps().catch(() => {});
  }

  const unsubscribe = subscribe(event => {
    if (event.type === 'reconnect') { refresh().catch(() => {}); return; }
    if (event.type === 'job' && event.data.id === job.id) jobChanged(event.data);
    if (event.type === 'step' && event.data.job_id === job.id) fetchNewSteps().catch(() => {});
  });

  async function refresh() {
    const next = await api(`/api/jobs/${job.id}`, { signal });
    jobChanged(next);
    await fetchNewSteps();
    return ACTIVE.has(job.status);
  }
  const poll = poller(refresh);

  drawHeader();
  drawCards();
  drawStepsTable();
  drawDownloads();
  await fetchNewSteps();
  if (!steps.length) await Promise.all([drawCurve(), showMask(), drawLayerChart(), drawCostChart()]);

  return () => {
    disposed = true;
    unsubscribe();
    poll.stop();
    if (playing) clearTimeout(playing);
    [curveEl, layerEl, costEl, heatmapEl].forEach(purge);
  };
}

