// The compare page's figure: every run's curve (accuracy against sparsity, FLOPs, latency or size), the
// dense baseline as each curve's first point, and the Pareto front over all points.
import { axis, baseLayout, plotText } from '../charts.js';
import { methodName } from '../constants.js';
import { bytes, ms, si, speedupText } from '../format.js';

export const LEGEND_LIMIT = 12; // more runs than this: one legend entry per method
const DASHES = ['solid', 'dash', 'dot', 'dashdot', 'longdash', 'longdashdot'];

// What the x axis shows; `better` says which way the Pareto front points.
export const X_AXES = {
  sparsity: { label: 'sparsity of the pruned layers (%)', better: 'higher', value: p => (p.sparsity ?? null) === null ? null : p.sparsity * 100, dense: () => 0, type: 'linear', fmt: v => `${v.toFixed(1)}%` },
  flops: { label: 'FLOPs per sample (effective, log)', better: 'lower', value: p => p.flops_effective ?? null, dense: p => p.flops_dense ?? null, type: 'log', fmt: v => si(v) },
  // p10 / p90 of the timings, where the API passes them on: error bars.
  latency: { label: 'measured latency (ms, log; bars p10–p90)', better: 'lower', value: p => p.latency_ms ?? null, dense: p => p.dense_latency_ms ?? null,
    low: p => p.latency_p10_ms ?? null, high: p => p.latency_p90_ms ?? null,
    denseLow: p => p.dense_latency_p10_ms ?? null, denseHigh: p => p.dense_latency_p90_ms ?? null, type: 'log', fmt: v => ms(v) },
  size: { label: 'model size (bytes, sparse storage, log)', better: 'lower', value: p => p.size_sparse_bytes ?? null, dense: p => p.size_dense_bytes ?? null, type: 'log', fmt: v => bytes(v) },
};
export const Y_AXES = {
  after: { label: 'test accuracy after fine-tuning (%)', value: p => p.accuracy },
  before: { label: 'test accuracy right after pruning (%)', value: p => p.accuracy_before_finetune ?? p.accuracy },
};

export const baselineOf = run => run.job.baseline?.accuracy ?? run.job.summary?.baseline_accuracy ?? null;

// points: [{x, y, ...}]; maximise y, and x in the direction `better`. Returns the front sorted by x.
export function paretoFront(points, better) {
  const valid = points.filter(p => Number.isFinite(p.x) && Number.isFinite(p.y));
  valid.sort((a, b) => (better === 'higher' ? b.x - a.x : a.x - b.x) || b.y - a.y);
  const front = [];
  let bestY = -Infinity;
  for (const p of valid) if (p.y > bestY) { front.push(p); bestY = p.y; }
  return front.sort((a, b) => a.x - b.x);
}

// One colour per run (the runs of one method must be told apart), the method as the marker symbol.
export const RUN_COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d',
  '#475569', '#ea580c', '#4f46e5', '#0d9488', '#b91c1c', '#a16207', '#9333ea', '#15803d'];
export const METHOD_SYMBOLS = { block: 'square', magnitude: 'circle', channel: 'diamond', group_lasso: 'triangle-up' };
export const methodSymbol = kind => METHOD_SYMBOLS[kind] || 'x';

export function runStyles(runs) {
  return runs.map((run, i) => ({ color: RUN_COLORS[i % RUN_COLORS.length], symbol: methodSymbol(run.job.method),
    dash: DASHES[Math.floor(i / RUN_COLORS.length) % DASHES.length] }));
}

// A run's points in chart units: the dense baseline first, then the steps by sparsity (the pruning trajectory).
function runPoints(run, X, Y, xKey) {
  const ordered = [...run.points].sort((a, b) => (a.sparsity ?? 0) - (b.sparsity ?? 0));
  const pts = ordered.map(p => ({ x: X.value(p), y: (Y.value(p) ?? null) === null ? null : Y.value(p) * 100, step: p.index,
    low: X.low?.(p) ?? null, high: X.high?.(p) ?? null, point: p }));
  const base = baselineOf(run);
  const first = run.points[0];
  const denseX = first ? X.dense(first) : xKey === 'sparsity' ? 0 : null;
  if (base !== null && denseX !== null && denseX !== undefined) {
    pts.unshift({ x: denseX, y: base * 100, step: null, low: X.denseLow?.(first) ?? null, high: X.denseHigh?.(first) ?? null, point: null });
  }
  return pts.filter(p => p.x !== null && p.y !== null);
}

const runLabel = job => plotText(`#${job.id} ${job.name}`);
const stepLabel = p => (p.step === null ? 'dense baseline' : `step ${p.step + 1}`);

// A compare point's speedup verdict (speedup_significant, speedup_low / _high where the API passes them on).
export const pointLatency = p => (p ? { speedup: p.speedup ?? null, low: p.speedup_low ?? null, high: p.speedup_high ?? null,
  significant: p.speedup_significant === undefined || p.speedup_significant === null ? null : Boolean(p.speedup_significant) } : null);

// Asymmetric x error bars from each point's low / high, hidden when no point has them.
function spreadBars(pts, color) {
  const known = pts.some(p => p.low !== null && p.high !== null);
  if (!known) return { visible: false };
  return { type: 'data', symmetric: false, visible: true, color, thickness: 1.2, width: 3,
    array: pts.map(p => (p.high === null ? null : p.high - p.x)), arrayminus: pts.map(p => (p.low === null ? null : p.x - p.low)) };
}

export function compareFigure(runs, { xKey, yKey, showFront }) {
  const X = X_AXES[xKey], Y = Y_AXES[yKey];
  const manyRuns = runs.length > LEGEND_LIMIT;
  const styles = runStyles(runs);
  const seenMethods = new Set();
  const all = [];
  const traces = runs.map((run, i) => {
    const kind = run.job.method;
    const style = styles[i];
    const pts = runPoints(run, X, Y, xKey);
    pts.forEach(p => all.push({ ...p, run }));
    const firstOfMethod = !seenMethods.has(kind);
    seenMethods.add(kind);
    return {
      type: 'scatter', mode: 'lines+markers',
      name: manyRuns ? methodName(kind) : runLabel(run.job),
      legendgroup: manyRuns ? kind : undefined, showlegend: manyRuns ? firstOfMethod : true,
      x: pts.map(p => p.x), y: pts.map(p => p.y),
      line: { color: style.color, dash: style.dash, width: manyRuns ? 1.2 : 2 },
      marker: { color: style.color, symbol: style.symbol, size: manyRuns ? 5 : 8, line: { color: '#fff', width: 0.5 } },
      error_x: spreadBars(pts, style.color),
      opacity: manyRuns ? 0.75 : 1,
      text: pts.map(p => `${runLabel(run.job)} (${methodName(kind)})<br>${stepLabel(p)}<br>${X.fmt(p.x)} → ${p.y.toFixed(2)}%`
        + `${p.point?.speedup ? `<br>speedup ${speedupText(pointLatency(p.point))}` : ''}`),
      hoverinfo: 'text',
      meta: { jobId: run.job.id },
    };
  });
  if (showFront) {
    const front = paretoFront(all, X.better);
    traces.push({
      type: 'scatter', mode: 'lines+markers', name: 'Pareto front', x: front.map(p => p.x), y: front.map(p => p.y),
      line: { color: '#0f172a', width: 2.5, shape: X.better === 'higher' ? 'vh' : 'hv' },
      marker: { size: 13, symbol: 'circle-open', color: '#0f172a', line: { width: 2 } },
      text: front.map(p => `Pareto: ${runLabel(p.run.job)}<br>${stepLabel(p)} · ${X.fmt(p.x)} → ${p.y.toFixed(2)}%`),
      hoverinfo: 'text',
    });
  }
  const ys = all.map(p => p.y);
  const layout = baseLayout({
    margin: { l: 60, r: 16, t: 12, b: 48 },
    xaxis: axis(X.label, { type: X.type, ...(xKey === 'sparsity' ? { range: [-2, 102] } : {}) }),
    yaxis: axis(Y.label, ys.length ? { range: [Math.max(0, Math.min(...ys) - 2), Math.min(100.5, Math.max(...ys) + 1.5)] } : {}),
    legend: { orientation: 'v', x: 1.01, y: 1, xanchor: 'left', font: { size: 11 } },
  });
  return { data: traces, layout };
}
