// DOM helpers, the small widgets every page shows (status badge, method chip, progress bar), banners.
// Every string goes into the page as text: h() appends strings as text nodes and never sets innerHTML.
import { methodColor, methodName, METHOD_TITLES, STATUS_LABELS } from './constants.js';

const MARKUP_KEYS = new Set(['innerHTML', 'outerHTML', 'srcdoc']);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (MARKUP_KEYS.has(key)) throw new Error(`h(): ${key} would parse markup; pass text children instead`);
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

// ---------------------------------------------------------------- widgets

export function methodChip(kind) {
  return h('span', { class: 'method-chip', title: METHOD_TITLES[kind], style: { '--method': methodColor(kind) } },
    h('span', { class: 'swatch' }), methodName(kind));
}

export function statusBadge(status) {
  return h('span', { class: `status status-${status}`, 'data-status': status }, STATUS_LABELS[status] || status);
}

export function progressBar(job) {
  const share = job.status === 'succeeded' ? 1 : Math.max(0, Math.min(1, job.progress || 0));
  return h('div', { class: `progress progress-${job.status}`, title: job.message || '' },
    h('div', { class: 'progress-fill', style: { width: `${(share * 100).toFixed(1)}%` } }),
    h('span', { class: 'progress-label' }, `${Math.round(share * 100)}%`));
}

// Buttons in a row, one pressed: options {value: label}.
export function segmented(name, options, current, onChange) {
  return h('div', { class: 'segmented', role: 'group', 'aria-label': name },
    Object.entries(options).map(([key, text]) => h('button', { type: 'button', 'data-value': key, class: key === current ? 'active' : '',
      onclick: event => {
        event.currentTarget.parentElement.querySelectorAll('button').forEach(b => b.classList.toggle('active', b === event.currentTarget));
        onChange(key);
      } }, text)));
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
