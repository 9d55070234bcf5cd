// The run page's mask heatmap with its controls: the layer, a slider over the steps and a play button.
// Masks are fetched once per (layer, step) and kept; a mask that arrives after the slider moved on is dropped.
import { api } from '../api.js';
import { draw } from '../charts.js';
import { HEATMAP_CONFIG, maskCaption, maskHeatmapFigure, noMaskFigure } from '../figures/mask-heatmap.js';
import { clear, fill, h } from '../ui.js';

const PLAY_STEP_MS = 600;

// page: { jobId, signal, color(), method(), steps(), currentIndex(), select(index), inspect(), onLayer(), emptyNote() }
// select(index) sets the inspected step (null: follow the latest); inspect() redraws what shows it.
export function maskViewer(page) {
  const heatmap = h('div', { id: 'heatmap', class: 'chart' });
  const layerSelect = h('select', { id: 'mask-layer', 'aria-label': 'layer', onchange: () => setLayer(layerSelect.value) });
  const slider = h('input', { id: 'mask-step', type: 'range', min: 0, max: 0, value: 0, step: 1, 'aria-label': 'step' });
  const playButton = h('button', { type: 'button', class: 'secondary small-button', id: 'mask-play', title: 'play the steps' }, '▶');
  const caption = h('div', { id: 'mask-label', class: 'small muted' }, '');
  const masks = new Map(); // "layer@step" -> mask answer
  let layer = null;
  let ticket = 0;
  let playing = null;
  let stopped = false;

  function setLayer(name) {
    layer = name;
    layerSelect.value = name;
    page.onLayer(name);
    show();
  }

  async function fetchMask(index, ticketNow) {
    const key = `${layer}@${index}`;
    if (masks.has(key)) return masks.get(key);
    heatmap.classList.add('stale');
    try {
      const mask = await api(`/api/jobs/${page.jobId}/layers/${encodeURIComponent(layer)}/mask?step=${index}`, { signal: page.signal });
      masks.set(key, mask);
      return mask;
    } catch (err) {
      if (ticketNow === ticket && err.name !== 'AbortError') caption.textContent = err.message;
      return null;
    } finally {
      if (ticketNow === ticket) heatmap.classList.remove('stale');
    }
  }

  async function show() {
    const index = page.currentIndex();
    const mine = ++ticket;
    if (index === null || !layer) {
      caption.textContent = page.emptyNote();
      const { data, layout } = noMaskFigure();
      return draw(heatmap, data, layout);
    }
    const mask = await fetchMask(index, mine);
    if (!mask || mine !== ticket || stopped) return null; // failed, or the slider has moved on
    const { data, layout } = maskHeatmapFigure(mask, page.color(), page.method());
    await draw(heatmap, data, layout, HEATMAP_CONFIG);
    if (mine !== ticket) return null;
    const steps = page.steps();
    const step = steps.find(s => s.index === index);
    caption.textContent = maskCaption(mask, { position: index + 1, count: steps.length, layer, accuracy: step?.accuracy, method: page.method() });
    heatmap.dataset.step = String(index);
    heatmap.dataset.layer = layer;
    return mask;
  }

  // The layers of the inspected step (or the latest) as choices; keeps the chosen one while it exists.
  function drawLayerOptions(step) {
    const names = (step?.layers || []).map(l => l.name);
    if (!names.length) { clear(layerSelect); layerSelect.disabled = true; return; }
    layerSelect.disabled = false;
    if (!layer || !names.includes(layer)) layer = names[0];
    const same = [...layerSelect.options].map(o => o.value).join() === names.join();
    if (!same) fill(layerSelect, names.map(n => h('option', { value: n }, n)));
    layerSelect.value = layer;
  }

  function drawSlider() {
    const steps = page.steps();
    slider.max = String(Math.max(0, steps.length - 1));
    slider.disabled = steps.length < 2;
    slider.value = String(Math.max(0, steps.findIndex(s => s.index === page.currentIndex())));
    playButton.disabled = steps.length < 2;
  }

  slider.addEventListener('input', () => {
    const steps = page.steps();
    const step = steps[Number(slider.value)];
    if (!step) return;
    page.select(step.index === steps.at(-1).index ? null : step.index);
    page.inspect();
  });

  function stopPlaying() {
    if (playing) clearTimeout(playing);
    playing = null;
    playButton.textContent = '▶';
  }

  playButton.addEventListener('click', () => {
    if (playing) { stopPlaying(); return; }
    playButton.textContent = '❚❚';
    const steps = page.steps();
    let position = Number(slider.value) >= steps.length - 1 ? 0 : Number(slider.value);
    const next = async () => {
      if (stopped || !playing) return;
      page.select(steps[position].index);
      slider.value = String(position);
      await page.inspect();
      position += 1;
      if (position < steps.length) playing = setTimeout(next, PLAY_STEP_MS);
      else { stopPlaying(); page.select(null); }
    };
    playing = setTimeout(next, 0);
  });

  return {
    heatmap, layerSelect, slider, playButton, caption,
    layer: () => layer,
    setLayer, show, drawLayerOptions, drawSlider,
    dispose() { stopped = true; stopPlaying(); },
  };
}
