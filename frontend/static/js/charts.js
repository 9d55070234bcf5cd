// Plotly, loaded on first use from the server (the installed plotly package), shared chart settings, and
// plotText, the one way user strings reach a figure.
import { track } from './api.js';

let plotlyPromise = null;

// quiet: a background prefetch that the loading indicator does not show.
export function loadPlotly({ quiet = false } = {}) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  plotlyPromise ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = '/static/vendor/plotly.min.js';
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => { plotlyPromise = null; reject(new Error('could not load Plotly.js from the server')); };
    document.head.append(script);
  });
  return quiet ? plotlyPromise : track(plotlyPromise);
}

// Plotly reads HTML-like tags (<a>, <b>, <br>) in trace names, hover text, tick labels, titles and
// annotations as markup. Any string a user typed (run names, tags) goes through this first: shown as text.
const PLOT_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };
export function plotText(s) {
  return String(s ?? '').replace(/[&<>]/g, c => PLOT_ESCAPES[c]);
}

// A figure with no data and one grey line of text in the middle ("no step yet").
export function emptyLayout(text, extra = {}) {
  return baseLayout({
    xaxis: axis('', { visible: false }), yaxis: axis('', { visible: false }),
    annotations: text ? [centredNote(text)] : [],
    ...extra,
  });
}

export function centredNote(text) {
  return { text: plotText(text), xref: 'paper', yref: 'paper', x: 0.5, y: 0.5, showarrow: false, font: { color: '#64748b', size: 13 } };
}

export const FONT = { family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 12, color: '#1e293b' };

export function baseLayout(extra = {}) {
  return {
    font: FONT,
    margin: { l: 56, r: 16, t: 12, b: 44 },
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: '#ffffff',
    hovermode: 'closest',
    hoverlabel: { font: { family: FONT.family, size: 12 } },
    legend: { orientation: 'h', x: 0, y: -0.22, font: { size: 11 } },
    ...extra,
  };
}

export function axis(title, extra = {}) {
  return { title: { text: title, standoff: 6 }, gridcolor: '#e2e8f0', zerolinecolor: '#cbd5e1', linecolor: '#94a3b8', ...extra };
}

export const CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ['lasso2d', 'select2d', 'autoScale2d'],
  toImageButtonOptions: { format: 'png', scale: 2 },
};

export async function draw(el, data, layout, config = {}) {
  const Plotly = await loadPlotly();
  if (!el.isConnected) return null;
  await Plotly.react(el, data, layout, { ...CONFIG, ...config });
  return el;
}

export function purge(el) {
  if (window.Plotly && el) window.Plotly.purge(el);
}

// Call handler(point) on a click on a data point; bound once per element (Plotly.react keeps listeners).
export function onPointClick(el, handler) {
  if (!el || el.dataset.clickBound) return;
  el.dataset.clickBound = '1';
  el.on('plotly_click', ev => { const point = ev.points?.[0]; if (point) handler(point); });
}
