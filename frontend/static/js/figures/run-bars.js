// The run page's bar charts at the inspected step: per-layer sparsity against its target, and the cost of
// the pruned model as a share of the dense one (latency, FLOPs, size, weights).
import { axis, baseLayout, emptyLayout, plotText } from '../charts.js';
import { bytes, latencyOf, ms, pct, realisedSize, si, speedupText, tint } from '../format.js';

export const LAYER_ROW_PX = 18;   // one horizontal bar per layer
export const LAYER_SCROLL_AT = 30; // more layers than this: the chart scrolls inside its card

// The height of the per-layer chart for n layers: every name readable, horizontal, never squeezed.
export const layerChartHeight = n => Math.max(200, 60 + LAYER_ROW_PX * n);

// Horizontal bars, one per layer in model order (top to bottom), the highlighted layer (the heatmap's) in the
// run's colour and outlined. Layer names come from the model (plugins too): tick labels and hover show text.
export function layerSparsityFigure({ step, highlighted, color }) {
  const layers = step?.layers || [];
  if (!layers.length) return { data: [], layout: emptyLayout('no step yet') };
  const names = layers.map(l => l.name);
  const isOn = l => l.name === highlighted;
  const data = [
    { type: 'bar', orientation: 'h', name: 'sparsity', y: names, x: layers.map(l => l.sparsity * 100),
      marker: { color: layers.map(l => (isOn(l) ? color : tint(color, 0.45))),
        line: { color: layers.map(l => (isOn(l) ? '#0f172a' : 'rgba(0,0,0,0)')), width: 1.5 } },
      text: layers.map(l => pct(l.sparsity)), textposition: 'outside', cliponaxis: false,
      hovertext: layers.map(l => `${plotText(l.name)} (${plotText(l.kind)}, ${(l.shape || []).join('×')})<br>${si(l.nonzero)} of ${si(l.params)} weights kept`),
      hoverinfo: 'text' },
    { type: 'scatter', mode: 'markers', name: 'target', y: names, x: layers.map(l => (l.target_sparsity ?? null) === null ? null : l.target_sparsity * 100),
      marker: { symbol: 'line-ns-open', size: 14, color: '#0f172a', line: { width: 2 } }, hovertemplate: 'target %{x:.1f}%<extra></extra>' },
  ];
  const longest = Math.max(...names.map(n => n.length));
  const layout = baseLayout({ showlegend: false, bargap: 0.3, height: layerChartHeight(names.length),
    margin: { l: Math.min(220, 16 + 7 * longest), r: 44, t: 8, b: 36 },
    xaxis: axis('sparsity (%)', { range: [0, 108], fixedrange: true }),
    yaxis: axis('', { type: 'category', autorange: 'reversed', tickmode: 'array', tickvals: names, ticktext: names.map(plotText),
      fixedrange: true, tickfont: { size: 11, color: '#334155' } }) });
  return { data, layout };
}

export function denseVsRealisedFigure({ step, color }) {
  if (!step) return { data: [], layout: emptyLayout('no step yet') };
  const lat = latencyOf(step);
  const rows = [
    ['latency', lat?.dense.ms, lat?.realised.ms, ms, `${lat?.form ? `as ${lat.form}, ` : ''}${speedupText(lat)}`],
    ['FLOPs', step.flops_dense, step.flops_effective, si, 'zeros skipped'],
    ['size', step.size_dense_bytes, realisedSize(step), bytes, ''],
    ['weights', step.params_total, step.params_nonzero, si, 'non-zero'],
  ].filter(r => r[1]);
  const share = r => (r[2] / r[1]) * 100;
  // The latency row's p10–p90 spread as error bars, in % of the dense median; none where it was not measured.
  const spread = (t, value) => {
    const known = lat && t.p10 !== null && t.p90 !== null && lat.dense.ms;
    const plus = rows.map(r => (known && r[0] === 'latency' ? (t.p90 / lat.dense.ms) * 100 - value(r) : NaN));
    const minus = rows.map(r => (known && r[0] === 'latency' ? value(r) - (t.p10 / lat.dense.ms) * 100 : NaN));
    return { type: 'data', symmetric: false, array: plus, arrayminus: minus, visible: Boolean(known), color: '#0f172a', thickness: 1.5, width: 5 };
  };
  const data = [
    { type: 'bar', orientation: 'h', name: 'dense', y: rows.map(r => r[0]), x: rows.map(() => 100), marker: { color: '#cbd5e1' }, error_x: lat ? spread(lat.dense, () => 100) : undefined,
      text: rows.map(r => r[3](r[1])), textposition: 'inside', insidetextanchor: 'middle', hovertemplate: '%{y} dense: %{text}<extra></extra>' },
    { type: 'bar', orientation: 'h', name: 'realised', y: rows.map(r => r[0]), x: rows.map(share), marker: { color }, error_x: lat ? spread(lat.realised, share) : undefined,
      text: rows.map(r => `${r[3](r[2])} (${share(r).toFixed(0)}%)`), textposition: 'auto', insidetextanchor: 'middle',
      hovertext: rows.map(r => `${r[0]} realised: ${r[3](r[2])} ${r[4]}`), hoverinfo: 'text' },
  ];
  const top = Math.max(105, ...(lat?.dense.p90 && lat.dense.ms ? [lat.dense.p90, lat.realised.p90 ?? 0].map(v => (v / lat.dense.ms) * 100 + 3) : []));
  const layout = baseLayout({ barmode: 'group', bargap: 0.25, margin: { l: 64, r: 12, t: 8, b: 40 },
    legend: { orientation: 'h', x: 0, y: -0.18 }, xaxis: axis('% of dense', { range: [0, top] }),
    yaxis: axis('', { autorange: 'reversed' }) });
  return { data, layout };
}
