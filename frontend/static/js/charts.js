// Plotly, loaded on first use from the server (the installed plotly package), and shared chart settings.
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
