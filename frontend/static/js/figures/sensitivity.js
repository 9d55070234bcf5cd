// Figures of a sensitivity scan: the layers x sparsity heatmap coloured by the drop of validation accuracy
// (layers in network order, top to bottom; the figure grows with the layers and its box scrolls), and
// accuracy vs sparsity with one line per layer. Layer names are the model's: they reach Plotly as plotText.
import { axis, baseLayout, emptyLayout, plotText } from '../charts.js';

export const ROW_PX = 22;
export const heatmapHeight = layers => Math.max(220, layers * ROW_PX + 90);

// {layer: [{sparsity, accuracy, val_accuracy, ...}]} in network order.
export function byLayer(points) {
  const out = new Map();
  for (const p of points) {
    if (!out.has(p.layer)) out.set(p.layer, []);
    out.get(p.layer).push(p);
  }
  for (const rows of out.values()) rows.sort((a, b) => a.sparsity - b.sparsity);
  return out;
}

export function heatmapFigure({ points, sparsities, baselineVal, chosen = {} }) {
  const layers = [...byLayer(points).keys()];
  if (!layers.length) return { data: [], layout: emptyLayout('no layer scanned yet') };
  const grid = byLayer(points);
  const xs = sparsities.map(s => `${Math.round(s * 1000) / 10}%`);
  const z = layers.map(layer => sparsities.map(s => {
    const row = grid.get(layer).find(r => Math.abs(r.sparsity - s) < 1e-9);
    return row ? baselineVal - row.val_accuracy : null;
  }));
  const text = layers.map((layer, i) => sparsities.map((s, j) => (z[i][j] === null ? ''
    : `${plotText(layer)} at ${xs[j]}: validation accuracy ${(100 * (baselineVal - z[i][j])).toFixed(1)}% (drop ${(100 * z[i][j]).toFixed(1)} pts)`)));
  const labels = layers.map(plotText);
  const data = [{
    type: 'heatmap', x: xs, y: labels, z, text, hoverinfo: 'text', zmin: 0, zmax: Math.max(0.05, ...z.flat().filter(v => v !== null)),
    colorscale: [[0, '#f0fdf4'], [0.15, '#fde68a'], [0.5, '#f97316'], [1, '#7f1d1d']], xgap: 1, ygap: 1,
    colorbar: { title: { text: 'drop', side: 'right' }, tickformat: '.0%', thickness: 12 },
  }];
  // The allocated sparsity of each layer, as a marker on its row (between the scanned columns).
  const marks = layers.filter(l => chosen[l] !== undefined);
  if (marks.length) {
    data.push({
      type: 'scatter', mode: 'markers', name: 'allocated', hoverinfo: 'skip', showlegend: false,
      x: marks.map(l => position(chosen[l], sparsities)), y: marks.map(plotText), xaxis: 'x2',
      marker: { symbol: 'diamond', size: 9, color: '#1d4ed8', line: { color: '#fff', width: 1 } },
    });
  }
  const layout = baseLayout({
    height: heatmapHeight(layers.length),
    margin: { l: Math.min(260, 12 + 7 * Math.max(...labels.map(l => l.length))), r: 16, t: 8, b: 40 },
    xaxis: axis('sparsity of the layer alone', { type: 'category' }),
    xaxis2: { overlaying: 'x', range: [-0.5, sparsities.length - 0.5], visible: false, fixedrange: true },
    yaxis: axis('', { type: 'category', autorange: 'reversed', automargin: true }),
  });
  return { data, layout };
}

// Where sparsity s falls on the heatmap's x axis: column j at the scanned sparsity j, 0 at the left edge.
function position(s, sparsities) {
  const knots = [[0, -0.5], ...sparsities.map((v, j) => [v, j])];
  for (let i = 1; i < knots.length; i++) {
    const [s0, x0] = knots[i - 1];
    const [s1, x1] = knots[i];
    if (s <= s1) return x0 + ((x1 - x0) * (s - s0)) / (s1 - s0 || 1);
  }
  return sparsities.length - 1;
}

export function curvesFigure({ points, baseline }) {
  const grid = byLayer(points);
  if (!grid.size) return { data: [], layout: emptyLayout('no layer scanned yet') };
  const data = [...grid.entries()].map(([layer, rows]) => ({
    type: 'scatter', mode: 'lines+markers', name: plotText(layer),
    x: [0, ...rows.map(r => r.sparsity)], y: [baseline?.accuracy ?? null, ...rows.map(r => r.accuracy)],
    hovertemplate: `${plotText(layer)}<br>sparsity %{x:.0%}: test accuracy %{y:.1%}<extra></extra>`,
  }));
  const layout = baseLayout({
    xaxis: axis('sparsity of the layer alone', { tickformat: '.0%', range: [0, 1] }),
    yaxis: axis('test accuracy', { tickformat: '.0%' }),
    showlegend: grid.size <= 30,
    shapes: baseline?.accuracy ? [{ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: baseline.accuracy, y1: baseline.accuracy,
      line: { dash: 'dash', color: '#64748b', width: 1 } }] : [],
  });
  return { data, layout };
}
