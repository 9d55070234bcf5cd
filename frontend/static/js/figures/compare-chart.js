// The compare page's figure: every run's curve (accuracy against sparsity, FLOPs, latency or size), the
// dense baseline as each curve's first point, and the Pareto front over all points.
import { axis, baseLayout, plotText } from '../charts.js';
import { methodColor, methodName } from '../constants.js';
import { bytes, ms, si } from '../format.js';

export const LEGEND_LIMIT = 12; // more runs than this: one legend entry per method
const DASHES = ['solid', 'dash', 'dot', 'dashdot', 'longdash', 'longdashdot'];
const SYMBOLS = ['circle', 'square', 'diamond', 'triangle-up', 'x', 'star', 'triangle-down', 'pentagon'];

// What the x axis shows; `better` says which way the Pareto front points.
export const X_AXES = {
  sparsity: { label: 'sparsity of the pruned layers (%)', better: 'higher', value: p => (p.sparsity ?? null) === null ? null : p.sparsity * 100, dense: () => 0, type: 'linear', fmt: v => `${v.toFixed(1)}%` },
  flops: { label: 'FLOPs per sample (effective, log)', better: 'lower', value: p => p.flops_effective ?? null, dense: p => p.flops_dense ?? null, type: 'log', fmt: v => si(v) },
  latency: { label: 'measured latency (ms, log)', better: 'lower', value: p => p.latency_ms ?? null, dense: p => p.dense_latency_ms ?? null, type: 'log', fmt: v => ms(v) },
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

// Line dash and marker per run: the colour says the method, dash and symbol tell its runs apart.
export function runStyles(runs) {
  const perMethod = new Map();
  return runs.map(run => {
    const k = perMethod.get(run.job.method) || 0;
    perMethod.set(run.job.method, k + 1);
    return { color: methodColor(run.job.method), dash: DASHES[k % DASHES.length], symbol: SYMBOLS[k % SYMBOLS.length] };
  });
}

// A run's points in chart units: the dense baseline first, then the steps by sparsity (the pruning trajectory).
function runPoints(run, X, Y, xKey) {
  const ordered = [...run.points].sort((a, b) => (a.sparsity ?? 0) - (b.sparsity ?? 0));
  const pts = ordered.map(p => ({ x: X.value(p), y: (Y.value(p) ?? null) === null ? null : Y.value(p) * 100, step: p.index }));
  const base = baselineOf(run);
  const first = run.points[0];
  const denseX = first ? X.dense(first) : xKey === 'sparsity' ? 0 : null;
  if (base !== null && denseX !== null && denseX !== undefined) pts.unshift({ x: denseX, y: base * 100, step: null });
  return pts.filter(p => p.x !== null && p.y !== null);
}

const runLabel = job => plotText(`#${job.id} ${job.name}`);
const stepLabel = p => (p.step === null ? 'dense baseline' : `step ${p.step + 1}`);

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
      line: { color: style.color, dash: manyRuns ? 'solid' : style.dash, width: manyRuns ? 1.2 : 2 },
      marker: { color: style.color, symbol: style.symbol, size: manyRuns ? 5 : 7 },
      opacity: manyRuns ? 0.75 : 1,
      text: pts.map(p => `${runLabel(run.job)} (${methodName(kind)})<br>${stepLabel(p)}<br>${X.fmt(p.x)} → ${p.y.toFixed(2)}%`),
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
