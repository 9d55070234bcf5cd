// DOM helpers, number formats, colours and banners shared by every page.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style' && typeof value === 'object') {
      for (const [prop, v] of Object.entries(value)) {
        if (prop.startsWith('--')) el.style.setProperty(prop, v); else el.style[prop] = v;
      }
    }
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

// Replace an element's children (null / false children are skipped, arrays flattened).
export function fill(el, ...children) { clear(el); append(el, children); return el; }

// ---------------------------------------------------------------- formats

export const dash = '–';

export function pct(x, digits = 1) {
  return x === null || x === undefined || Number.isNaN(x) ? dash : `${(x * 100).toFixed(digits)}%`;
}

export function signedPts(x, digits = 1) {
  if (x === null || x === undefined) return dash;
  const v = x * 100;
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)} pts`;
}

export function bytes(n) {
  if (n === null || n === undefined) return dash;
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : n < 10 ? 2 : 1)} ${units[i]}`;
}

export function si(n, digits = 2) {
  if (n === null || n === undefined) return dash;
  const steps = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [size, suffix] of steps) if (Math.abs(n) >= size) return `${(n / size).toFixed(digits)}${suffix}`;
  return `${Math.round(n)}`;
}

export function ms(x) {
  if (x === null || x === undefined) return dash;
  return x < 1 ? `${(x * 1000).toFixed(0)} µs` : `${x.toFixed(x < 10 ? 2 : 1)} ms`;
}

export function times(x) {
  return x === null || x === undefined ? dash : `${x.toFixed(2)}×`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return dash;
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

export function runTime(job) {
  if (!job.started_at) return null;
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  return (end - Date.parse(job.started_at)) / 1000;
}

// ---------------------------------------------------------------- colours: one per method, on every chart

export const METHOD_COLORS = {
  block: '#2563eb', magnitude: '#dc2626', channel: '#059669', group_lasso: '#9333ea',
};
export const METHOD_NAMES = {
  block: 'block', magnitude: 'magnitude', channel: 'channel', group_lasso: 'group lasso',
};

export function methodColor(kind) { return METHOD_COLORS[kind] || '#64748b'; }

// A lighter tint of a #rrggbb colour (share 0..1 of white mixed in).
export function tint(hex, share) {
  const c = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
  const mixed = c.map(v => Math.round(v + (255 - v) * share));
  return `rgb(${mixed.join(',')})`;
}

export function methodChip(kind) {
  return h('span', { class: 'method-chip', style: { '--method': methodColor(kind) } },
    h('span', { class: 'swatch' }), METHOD_NAMES[kind] || kind);
}

export function statusBadge(status) {
  return h('span', { class: `status status-${status}`, 'data-status': status }, status);
}

export function progressBar(job) {
  const share = job.status === 'succeeded' ? 1 : Math.max(0, Math.min(1, job.progress || 0));
  return h('div', { class: `progress progress-${job.status}`, title: job.message || '' },
    h('div', { class: 'progress-fill', style: { width: `${(share * 100).toFixed(1)}%` } }),
    h('span', { class: 'progress-label' }, `${Math.round(share * 100)}%`));
}

export function methodSummary(spec) {
  const m = spec?.method || {};
  const bits = [];
  if (m.kind === 'block') bits.push(`${Array.isArray(m.block_size) ? m.block_size.join('×') : `${m.block_size}×${m.block_size}`} blocks`, m.score, m.scope === 'global' ? 'global' : null);
  if (m.kind === 'magnitude') bits.push(m.scope === 'global' ? 'global' : 'per layer');
  if (m.kind === 'channel') bits.push(m.importance);
  if (m.kind === 'group_lasso') bits.push(`λ=${m.strength}`);
  return bits.filter(Boolean).join(', ');
}

export function scheduleSummary(spec) {
  const s = spec?.schedule || {};
  const after = s.after === 'rewind' ? `rewind to epoch ${s.rewind_epoch}` : s.after === 'none' ? 'no fine-tuning' : `${s.finetune_epochs} ep fine-tune`;
  if (s.kind === 'iterative') {
    const end = [s.rounds ? `${s.rounds} rounds` : null, s.target ? `to ${pct(s.target, 0)}` : null].filter(Boolean).join(' / ');
    return `iterative ${pct(s.rate, 0)}/round, ${end}, ${after}`;
  }
  if (s.kind === 'oneshot') return `one-shot ${(s.sparsities || []).map(x => pct(x, 0)).join(', ')}, ${after}`;
  return s.kind || '';
}

// ---------------------------------------------------------------- banners (errors that concern the whole page)

export function showBanner(key, text, kind = 'error', action = null) {
  const box = document.getElementById('banners');
  let el = box.querySelector(`[data-banner="${key}"]`);
  if (!el) { el = h('div', { class: `banner banner-${kind}`, 'data-banner': key }); box.append(el); }
  el.className = `banner banner-${kind}`;
  fill(el, h('span', { class: 'banner-text' }, text));
  if (action) el.append(h('button', { type: 'button', class: 'link-button', onclick: action.onclick }, action.label));
  el.append(h('button', { type: 'button', class: 'banner-close', title: 'dismiss', onclick: () => el.remove() }, '×'));
}

export function clearBanner(key) {
  document.querySelector(`#banners [data-banner="${key}"]`)?.remove();
}

export function errorBox(err) {
  return h('div', { class: 'error-box' }, err?.message || String(err));
}
