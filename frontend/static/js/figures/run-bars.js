// The run page's bar charts at the inspected step: per-layer sparsity against its target, and the cost of
// the pruned model as a share of the dense one (latency, FLOPs, size, weights).
import { axis, baseLayout, emptyLayout, plotText } from '../charts.js';
import { bytes, ms, pct, realisedSize, si, tint } from '../format.js';

// Layer names come from the model (plugins too): tick labels and hover text show them as text.
export function layerSparsityFigure({ step, highlighted, color }) {
  const layers = step?.layers || [];
  const names = layers.map(l => l.name);
  const data = [
    { type: 'bar', name: 'sparsity', x: names, y: layers.map(l => l.sparsity * 100),
      marker: { color: layers.map(l => (l.name === highlighted ? color : tint(color, 0.35))) },
      text: layers.map(l => pct(l.sparsity)), textposition: 'outside', cliponaxis: false,
      hovertext: layers.map(l => `${plotText(l.name)} (${plotText(l.kind)}, ${(l.shape || []).join('×')})<br>${si(l.nonzero)} of ${si(l.params)} weights kept`),
      hoverinfo: 'text' },
    { type: 'scatter', mode: 'markers', name: 'target', x: names, y: layers.map(l => (l.target_sparsity ?? null) === null ? null : l.target_sparsity * 100),
      marker: { symbol: 'line-ew-open', size: 22, color: '#0f172a', line: { width: 2 } }, hovertemplate: 'target %{y:.1f}%<extra></extra>' },
  ];
  const layout = baseLayout({ showlegend: false, bargap: 0.35, margin: { l: 48, r: 8, t: 18, b: 48 },
    xaxis: axis('', { type: 'category', automargin: true, tickmode: 'array', tickvals: names, ticktext: names.map(plotText) }),
    yaxis: axis('sparsity (%)', { range: [0, 105] }) });
  return { data, layout };
}

export function denseVsRealisedFigure({ step, color }) {
  if (!step) return { data: [], layout: emptyLayout('no step yet') };
  const lat = step.latency || {};
  const rows = [
    ['latency', lat.dense_ms, lat.realised_ms, ms, lat.form ? `as ${lat.form}` : ''],
    ['FLOPs', step.flops_dense, step.flops_effective, si, 'zeros skipped'],
    ['size', step.size_dense_bytes, realisedSize(step), bytes, ''],
    ['weights', step.params_total, step.params_nonzero, si, 'non-zero'],
  ].filter(r => r[1]);
  const share = r => (r[2] / r[1]) * 100;
  const data = [
    { type: 'bar', orientation: 'h', name: 'dense', y: rows.map(r => r[0]), x: rows.map(() => 100), marker: { color: '#cbd5e1' },
      text: rows.map(r => r[3](r[1])), textposition: 'inside', insidetextanchor: 'end', hovertemplate: '%{y} dense: %{text}<extra></extra>' },
    { type: 'bar', orientation: 'h', name: 'realised', y: rows.map(r => r[0]), x: rows.map(share), marker: { color },
      text: rows.map(r => `${r[3](r[2])} (${share(r).toFixed(0)}%)`), textposition: 'auto', insidetextanchor: 'end',
      hovertext: rows.map(r => `${r[0]} realised: ${r[3](r[2])} ${r[4]}`), hoverinfo: 'text' },
  ];
  const layout = baseLayout({ barmode: 'group', bargap: 0.25, margin: { l: 64, r: 12, t: 8, b: 40 },
    legend: { orientation: 'h', x: 0, y: -0.18 }, xaxis: axis('% of dense', { range: [0, 105] }),
    yaxis: axis('', { autorange: 'reversed' }) });
  return { data, layout };
}
