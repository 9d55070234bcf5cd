// Repeats of one experiment: runs whose specs differ only in `seed` (and their names) are one configuration.
// The compare page draws each configuration as one curve, the mean over its seeds at each step, with a
// band of +- one standard deviation (sample std, n - 1), and lists it once in the key-figures table with n.
// Everything is computed here from the compare payload: the server stays a plain per-run read.

const MEANED = ['target_sparsity', 'sparsity', 'accuracy', 'accuracy_before_finetune', 'flops_effective', 'flops_dense',
  'latency_ms', 'dense_latency_ms', 'speedup', 'size_sparse_bytes', 'size_dense_bytes'];
const SPREAD = ['accuracy', 'accuracy_before_finetune'];

// JSON with sorted keys, so two specs with the same fields in another order are the same configuration.
function stable(value) {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value && typeof value === 'object') return `{${Object.keys(value).sort().map(k => `${JSON.stringify(k)}:${stable(value[k])}`).join(',')}}`;
  return JSON.stringify(value ?? null);
}

export function configurationKey(spec) {
  const { name, seed, ...rest } = spec || {};
  return stable(rest);
}

// "sweep [method.block_size=2, seed=1]" -> "sweep [method.block_size=2]"; "x [seed=0]" -> "x".
export function withoutSeed(name) {
  return String(name).replace(/(,\s*)?\bseed=\d+(,\s*)?/, (m, before, after) => (before && after ? ', ' : ''))
    .replace(/\s*\[\s*\]$/, '').trim();
}

function translucent(hex, alpha) {
  const [r, g, b] = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
  return `rgba(${r},${g},${b},${alpha})`;
}

const mean = xs => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = xs => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)));
const nums = xs => xs.filter(v => typeof v === 'number' && Number.isFinite(v));

// [{key, runs}] in the order the first run of each configuration comes. Only runs with different seeds are
// repeats: a configuration where two runs share a seed (the same experiment run twice) stays one set per run.
export function seedSets(runs) {
  const sets = new Map();
  for (const run of runs) {
    const key = configurationKey(run.job.spec);
    if (!sets.has(key)) sets.set(key, { key, runs: [] });
    sets.get(key).runs.push(run);
  }
  const out = [];
  for (const run of runs) { // in the runs' order: a set where its first run is, the others where they are
    const set = sets.get(configurationKey(run.job.spec));
    const repeats = new Set(set.runs.map(r => r.job.spec?.seed ?? 0)).size === set.runs.length;
    if (!repeats) out.push({ key: `${set.key}#${run.job.id}`, runs: [run] });
    else if (set.runs[0] === run) out.push(set);
  }
  return out;
}

// One run-shaped object for a configuration: the mean point of each step index that every seed has, the
// std of the accuracies beside them, the mean baseline; `seeds` = n, `members` = the runs' ids.
export function meanRun(set) {
  const [first] = set.runs;
  if (set.runs.length === 1) return { ...first, seeds: 1, members: [first.job.id] };
  const byIndex = set.runs.map(run => new Map(run.points.map(p => [p.index, p])));
  const indices = [...byIndex[0].keys()].filter(i => byIndex.every(m => m.has(i))).sort((a, b) => a - b);
  const points = indices.map(index => {
    const at = byIndex.map(m => m.get(index));
    const p = { index };
    for (const key of MEANED) { const xs = nums(at.map(q => q[key])); p[key] = xs.length === at.length ? mean(xs) : null; }
    for (const key of SPREAD) { const xs = nums(at.map(q => q[key])); p[`${key}_std`] = xs.length === at.length ? std(xs) : null; }
    return p;
  });
  const bases = nums(set.runs.map(r => r.job.baseline?.accuracy ?? r.job.summary?.baseline_accuracy));
  const base = bases.length === set.runs.length ? mean(bases) : null;
  const statuses = new Set(set.runs.map(r => r.job.status));
  const job = {
    ...first.job,
    name: `${withoutSeed(first.job.name)} · mean of n=${set.runs.length} seeds`,
    status: statuses.size === 1 ? first.job.status : [...statuses].find(s => s === 'running' || s === 'queued') || 'failed',
    baseline: { ...(first.job.baseline || {}), accuracy: base, accuracy_std: std(bases) },
    summary: { ...(first.job.summary || {}), baseline_accuracy: base },
  };
  return { job, points, total_points: points.length, seeds: set.runs.length, members: set.runs.map(r => r.job.id) };
}

// Filled +- std bands of the configurations with n > 1, in the compare figure's units (X, Y its axes).
export function bandTraces(shown, styles, X, Y, yKey) {
  const stdKey = yKey === 'before' ? 'accuracy_before_finetune_std' : 'accuracy_std';
  const out = [];
  shown.forEach((run, i) => {
    if ((run.seeds || 1) < 2) return;
    const pts = [...run.points].sort((a, b) => (a.sparsity ?? 0) - (b.sparsity ?? 0))
      .map(p => ({ x: X.value(p), y: Y.value(p), s: p[stdKey] }))
      .filter(p => p.x !== null && p.x !== undefined && p.y !== null && p.y !== undefined && p.s !== null);
    if (!pts.length) return;
    const upper = pts.map(p => (p.y + p.s) * 100);
    const lower = pts.map(p => (p.y - p.s) * 100).reverse();
    out.push({ type: 'scatter', mode: 'lines', x: [...pts.map(p => p.x), ...pts.map(p => p.x).reverse()], y: [...upper, ...lower],
      fill: 'toself', fillcolor: translucent(styles[i].color, 0.16), line: { width: 0, color: styles[i].color }, hoverinfo: 'skip',
      showlegend: false, meta: { band: true, jobId: run.job.id, seeds: run.seeds } });
  });
  return out;
}
