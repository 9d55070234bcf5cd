// Constants every page shares: job statuses, method names and colours, poll intervals.

export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const ACTIVE_STATUSES = new Set(['queued', 'running']);
export const isActive = status => ACTIVE_STATUSES.has(status);
export const anyActive = jobs => jobs.some(job => isActive(job.status));

export const STATUS_LABELS = {
  queued: 'queued', running: 'running', succeeded: 'succeeded', failed: 'failed', cancelled: 'cancelled',
};

// One colour per method, on every chart and chip.
export const METHOD_COLORS = {
  block: '#2563eb', magnitude: '#dc2626', channel: '#059669', group_lasso: '#9333ea',
};
export const OTHER_METHOD_COLOR = '#64748b';

// Short names for chips, legends and filters; the titles say what each method is.
export const METHOD_NAMES = {
  block: 'block', magnitude: 'magnitude', channel: 'channel', group_lasso: 'group lasso',
};
export const METHOD_TITLES = {
  block: 'Block pruning: r x c blocks scored by mean |w| (coarse-grained blocky sparse structure)',
  magnitude: 'Fine-grained magnitude pruning (|w|, per layer or one global threshold)',
  channel: "Channel (filter) pruning, physically removed with Torch-Pruning's dependency graph",
  group_lasso: 'SSL group lasso (Wen et al. 2016), then filter removal',
};
export const methodName = kind => METHOD_NAMES[kind] || kind;
export const methodColor = kind => METHOD_COLORS[kind] || OTHER_METHOD_COLOR;

// Fallback polling while the event stream is down: fast while something runs, backing off to slow.
export const POLL_FAST_MS = 2000;
export const POLL_SLOW_MS = 30_000;
// Event-stream reconnects back off from 1 s to 30 s.
export const RECONNECT_MIN_MS = 1000;
export const RECONNECT_MAX_MS = 30_000;

export const SELECTION_KEY = 'prunelab.selection';
