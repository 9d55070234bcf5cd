// Number, time and spec formats shared by every page. Pure functions: strings out, no DOM.

export const dash = '–';

const missing = x => x === null || x === undefined || Number.isNaN(x);

export function pct(x, digits = 1) {
  return missing(x) ? dash : `${(x * 100).toFixed(digits)}%`;
}

export function signedPts(x, digits = 1) {
  if (missing(x)) return dash;
  const v = x * 100;
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)} pts`;
}

// A signed difference in points without the unit (table cells whose header says "pts").
export const signedPtsShort = (x, digits = 1) => signedPts(x, digits).replace(' pts', '');

export function bytes(n) {
  if (missing(n)) return dash;
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : n < 10 ? 2 : 1)} ${units[i]}`;
}

export function si(n, digits = 2) {
  if (missing(n)) return dash;
  const steps = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [size, suffix] of steps) if (Math.abs(n) >= size) return `${(n / size).toFixed(digits)}${suffix}`;
  return `${Math.round(n)}`;
}

export function ms(x) {
  if (missing(x)) return dash;
  return x < 1 ? `${(x * 1000).toFixed(0)} µs` : `${x.toFixed(x < 10 ? 2 : 1)} ms`;
}

export function times(x) {
  return missing(x) ? dash : `${x.toFixed(2)}×`;
}

export function duration(seconds) {
  if (missing(seconds) || seconds < 0) return dash;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function ago(iso) {
  if (!iso) return dash;
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < 45) return 'just now';
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---------------------------------------------------------------- colours

// A lighter tint of a #rrggbb colour (share 0..1 of white mixed in).
export function tint(hex, share) {
  const c = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
  const mixed = c.map(v => Math.round(v + (255 - v) * share));
  return `rgb(${mixed.join(',')})`;
}

// ---------------------------------------------------------------- jobs and specs

// Seconds a job has run (so far), or null before it started.
export function runTime(job) {
  if (!job.started_at) return null;
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  return (end - Date.parse(job.started_at)) / 1000;
}

// The smaller of sparse storage and the compact model: what the pruned model really takes.
export const realisedSize = step => Math.min(step.size_sparse_bytes ?? Infinity, step.size_compact_bytes ?? Infinity);

// "2×2 blocks, mean_abs", "global", "l1", "λ=0.0001": the method's parameters in a few words.
export function describeMethod(spec) {
  const m = spec?.method || {};
  const bits = [];
  if (m.kind === 'block') bits.push(`${Array.isArray(m.block_size) ? m.block_size.join('×') : `${m.block_size}×${m.block_size}`} blocks`, m.score, m.scope === 'global' ? 'global' : null);
  if (m.kind === 'magnitude') bits.push(m.scope === 'global' ? 'global' : 'per layer');
  if (m.kind === 'channel') bits.push(m.importance);
  if (m.kind === 'group_lasso') bits.push(`λ=${m.strength}`);
  return bits.filter(Boolean).join(', ');
}

// What a stored job's schedule says: "iterative 20%/round, 10 rounds, 2 ep fine-tune".
export function describeSchedule(spec) {
  const s = spec?.schedule || {};
  const after = s.after === 'rewind' ? `rewind to epoch ${s.rewind_epoch}` : s.after === 'none' ? 'no fine-tuning' : `${s.finetune_epochs} ep fine-tune`;
  if (s.kind === 'iterative') {
    const end = [s.rounds ? `${s.rounds} rounds` : null, s.target ? `to ${pct(s.target, 0)}` : null].filter(Boolean).join(' / ');
    return `iterative ${pct(s.rate, 0)}/round, ${end}, ${after}`;
  }
  if (s.kind === 'oneshot') return `one-shot ${(s.sparsities || []).map(x => pct(x, 0)).join(', ')}, ${after}`;
  return s.kind || '';
}

// Where a schedule being typed into the form ends up: the sparsity reached and the number of steps.
// '' while the numbers are incomplete or out of range (the server's 422 says why).
export function predictScheduleOutcome(s) {
  if (s.kind === 'iterative' && typeof s.rate === 'number' && s.rate > 0 && s.rate < 1) {
    const rounds = typeof s.rounds === 'number' ? s.rounds : null;
    const reach = rounds ? 1 - (1 - s.rate) ** rounds : null;
    const target = typeof s.target === 'number' ? s.target : null;
    const final = target !== null && (reach === null || target < reach) ? target : reach;
    const steps = target !== null && final === target ? Math.ceil(Math.log(1 - target) / Math.log(1 - s.rate)) : rounds;
    return final === null ? '' : `→ about ${pct(final)} of the pruned layers' weights removed after ${plural(steps, 'step')}`;
  }
  if (s.kind === 'oneshot' && Array.isArray(s.sparsities)) return `→ ${plural(s.sparsities.length, 'step')}, each from the same baseline`;
  return '';
}

// ---------------------------------------------------------------- latency with its spread

// The measured latency of a step (or a baseline) with its spread where the engine reports one. The spread's
// keys may sit in the latency dict (dense_p10_ms) or flattened on the step (latency_dense_p10_ms); without
// them the old single values come back with null bounds.
//   { device, batchSize, form, dense: {ms, p10, p90}, realised: {ms, p10, p90}, speedup, low, high, significant }
export function latencyOf(step) {
  const lat = step?.latency;
  if (!lat && step?.latency_dense_ms === undefined) return null;
  const pick = key => {
    for (const v of [lat?.[key], step?.[`latency_${key}`], step?.[key]]) if (v !== undefined && v !== null) return v;
    return null;
  };
  const timing = kind => ({ ms: pick(`${kind}_ms`), p10: pick(`${kind}_p10_ms`), p90: pick(`${kind}_p90_ms`) });
  const significant = pick('speedup_significant');
  return {
    device: pick('device'), batchSize: pick('batch_size'), form: pick('form'),
    dense: timing('dense'), realised: timing('realised'),
    speedup: pick('speedup'), low: pick('speedup_low'), high: pick('speedup_high'),
    significant: significant === null ? null : Boolean(significant),
  };
}

// "2.31× (2.10–2.52)" when significant, "~1.0× (within noise)" when not, the plain value without a verdict.
export function speedupText(lat, { range = true } = {}) {
  if (!lat || missing(lat.speedup)) return dash;
  if (lat.significant === false) return '~1.0× (within noise)';
  const bounds = range && !missing(lat.low) && !missing(lat.high) ? ` (${lat.low.toFixed(2)}–${lat.high.toFixed(2)})` : '';
  return `${times(lat.speedup)}${bounds}`;
}

// "423–500 µs": a timing's p10–p90, '' where not measured.
export function msRange(t) {
  if (!t || missing(t.p10) || missing(t.p90)) return '';
  const [low, high] = [ms(t.p10), ms(t.p90)];
  const unit = high.split(' ')[1];
  return low.endsWith(` ${unit}`) ? `${low.split(' ')[0]}–${high}` : `${low}–${high}`;
}

// "1.23 ms (1.10–1.40)": a timing with its p10–p90 spread, where known.
export function msSpread(t) {
  if (!t || missing(t.ms)) return dash;
  return msRange(t) ? `${ms(t.ms)} (${msRange(t)})` : ms(t.ms);
}

// ---------------------------------------------------------------- queue

// "3rd in the queue cpu · starts in about 2 min": where the API tells (queue_position, expected_start_s).
export function queueText(job) {
  const bits = [];
  if (job.queue_position !== undefined && job.queue_position !== null) {
    bits.push(job.queue_position <= 1 ? `next in the queue ${job.queue}` : `${ordinal(job.queue_position)} in the queue ${job.queue}`);
  }
  if (job.expected_start_s !== undefined && job.expected_start_s !== null) {
    bits.push(job.expected_start_s < 5 ? 'starts any moment' : `starts in about ${duration(job.expected_start_s)}`);
  }
  return bits.join(' · ');
}

const ordinal = n => `${n}${(n % 100 >= 11 && n % 100 <= 13) ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] || 'th')}`;

