// The New run form's fields, one per catalog parameter: how a parameter becomes an input, and how an
// input's text becomes a spec value again. Each field has an error slot (data-error-for) for the API's 422.
import { h } from '../ui.js';

const label = name => name.replace(/_/g, ' ');

export function getPath(obj, path) {
  return path.split('.').reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

export function setPath(obj, path, value) {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) o = (o[k] ??= {});
  o[keys.at(-1)] = value;
}

function rangeText(p) {
  const lo = p.min ?? p.min_exclusive;
  const hi = p.max ?? p.max_exclusive;
  if (lo === undefined && hi === undefined) return '';
  const left = lo === undefined ? '' : `${lo}${p.min_exclusive !== undefined ? ' <' : ' ≤'} `;
  const right = hi === undefined ? '' : ` ${p.max_exclusive !== undefined ? '<' : '≤'} ${hi}`;
  return `${left}x${right}`;
}

// Block size as the form writes it: 4, or 2x4 for [rows, cols].
const formatBlockSize = v => (Array.isArray(v) ? v.join('x') : String(v));

function formatValue(p, value) {
  if (value === null || value === undefined) return '';
  if (p.type === 'blocksize') return formatBlockSize(value);
  if (p.type === 'list' || p.type === 'strlist') return Array.isArray(value) ? value.join(', ') : String(value);
  if (p.type === 'map') return Object.entries(value).map(([k, v]) => `${k}=${v}`).join(', ');
  if (Array.isArray(value)) return value.join(', ');
  return String(value);
}

// ---------------------------------------------------------------- reading a field: never coerce

// The form never guesses: a text it cannot read as the field's type is an error next to the field, not a
// different number (a number input would drop "[", "]" and "," and send 24 for "[2, 4]").
const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export class FieldError extends Error {}

function number(text, type, what = 'a number') {
  if (type === 'int' ? !INT.test(text) : !FLOAT.test(text)) {
    throw new FieldError(`"${text}" is not ${type === 'int' ? 'a whole number' : what}`);
  }
  return Number(text);
}

// "4" -> 4; "2x4", "2×4", "[2, 4]", "2, 4", "(2 4)" -> [2, 4].
export function parseBlockSize(text) {
  const bracket = text.match(/^([[(])\s*(.*?)\s*([\])])$/);
  const pair = { '[': ']', '(': ')' };
  const open = /^[[(]/.test(text) || /[\])]$/.test(text);
  const inner = bracket && pair[bracket[1]] === bracket[3] ? bracket[2] : open ? null : text;
  if (inner === null) throw new FieldError(`"${text}": the brackets do not match; write 4, 2x4 or [2, 4]`);
  const parts = inner.split(/\s*[x×*,;]\s*|\s+/i);
  if (parts.length === 1 && INT.test(parts[0])) return Number(parts[0]);
  if (parts.length === 2 && parts.every(x => INT.test(x))) return parts.map(Number);
  throw new FieldError(`"${text}" is not a block size: write 4 (4 x 4 blocks), 2x4 or [2, 4] (rows, cols)`);
}

function parseList(text) {
  if (text.startsWith('[') !== text.endsWith(']')) throw new FieldError(`"${text}": the brackets do not match`);
  const inner = text.replace(/^\[\s*/, '').replace(/\s*\]$/, '');
  const items = inner.split(/\s*[,;]\s*|\s+/).filter(s => s !== '');
  return items.map((x, i) => {
    try { return number(x, 'float'); } catch { throw new FieldError(`item ${i + 1}, "${x}", is not a number`); }
  });
}

function parseMap(text) {
  const out = {};
  for (const part of text.split(/\s*[,;]\s*/).filter(Boolean)) {
    const match = part.match(/^([^=:\s]+)\s*[=:]\s*(.*)$/);
    if (!match || match[2] === '') throw new FieldError(`"${part}" is not layer=value`);
    try { out[match[1]] = number(match[2], 'float'); } catch { throw new FieldError(`${match[1]}: "${match[2]}" is not a number`); }
  }
  return out;
}

// The spec value of an input; throws FieldError with the reason when its text is not one.
export function readInput(input) {
  const type = input.dataset.type;
  if (type === 'bool') return input.type === 'checkbox' ? input.checked : input.value === '' ? null : input.value === 'true';
  if (type === 'enum') return input.value;
  const raw = input.value.trim();
  if (raw === '') {
    if (input.dataset.optional === 'true' || type === 'strlist' || type === 'map' || type === 'str') return type === 'strlist' ? [] : type === 'str' ? '' : null;
    throw new FieldError(`empty: give a value${input.dataset.default ? ` (default ${input.dataset.default})` : ''}`);
  }
  if (type === 'int' || type === 'float') return number(raw, type);
  if (type === 'blocksize') return parseBlockSize(raw);
  if (type === 'strlist') return raw.split(/[,;]+/).map(x => x.trim()).filter(Boolean);
  if (type === 'list') return parseList(raw);
  if (type === 'map') return parseMap(raw);
  return raw;
}

export function paramField(path, p, value, extraHint = '') {
  const id = `f-${path.replace(/\./g, '-')}`;
  const optional = p.default === null || p.default === undefined;
  const common = { id, name: path, 'data-path': path, 'data-type': p.type, 'data-optional': String(optional),
    'data-default': optional ? undefined : formatValue(p, p.default) };
  let input;
  if (p.type === 'enum') {
    input = h('select', common, p.choices.map(c => h('option', { value: c, selected: c === value }, c)));
  } else if (p.type === 'bool' && p.default === null) {
    input = h('select', common,
      h('option', { value: '', selected: value === null || value === undefined }, 'default'),
      h('option', { value: 'true', selected: value === true }, 'on'),
      h('option', { value: 'false', selected: value === false }, 'off'));
  } else if (p.type === 'bool') {
    input = h('input', { ...common, type: 'checkbox', checked: Boolean(value) });
  } else {
    // Numbers too are text inputs: the browser's number input drops what it cannot read, silently.
    const numeric = p.type === 'int' || p.type === 'float';
    const placeholder = p.type === 'map' ? 'layer=value, …' : p.type === 'list' || p.type === 'strlist' ? 'comma separated'
      : p.type === 'blocksize' ? '4, 2x4 or [2, 4]' : optional ? 'default' : '';
    input = h('input', { ...common, type: 'text', value: formatValue(p, value), placeholder, spellcheck: false, autocomplete: 'off',
      inputmode: numeric ? (p.type === 'int' ? 'numeric' : 'decimal') : undefined });
  }
  const hint = [p.help, rangeText(p), extraHint].filter(Boolean).join(' · ');
  const wide = ['map', 'list'].includes(p.type);
  return h('div', { class: `field${wide ? ' wide' : ''}${p.type === 'bool' && p.default !== null ? ' check' : ''}`, 'data-field': path },
    h('label', { for: id }, label(p.name)),
    input,
    hint ? h('div', { class: 'hint' }, hint) : null,
    errorSlot(path));
}

// A field's error slot, for fields built by hand (method, schedule, layers).
export const errorSlot = path => h('div', { class: 'field-error', 'data-error-for': path, role: 'alert' });

// The checkboxes of the layers to prune, with default / all / none shortcuts.
export function layersField(model, chosenLayers, onChange) {
  if (!model?.layers) { // a large torchvision model the worker could not list without building it
    return h('div', { class: 'field wide', 'data-field': 'method.layers' }, h('label', {}, 'layers to prune'),
      h('div', { class: 'hint' }, `the layers of ${model?.name || 'this model'} are known once a worker builds it: its default layers are pruned`),
      errorSlot('method.layers'));
  }
  const chosen = new Set(chosenLayers || model.default_layers);
  const boxes = model.layers.map(name => h('label', { class: 'layer-choice' },
    h('input', { type: 'checkbox', value: name, checked: chosen.has(name), 'data-layer': name }), name));
  const setAll = names => () => {
    boxes.forEach(label => { const box = label.querySelector('input'); box.checked = names.includes(box.value); });
    onChange();
  };
  return h('div', { class: 'field wide', 'data-field': 'method.layers' },
    h('label', {}, 'layers to prune ',
      h('button', { type: 'button', class: 'link-button small', onclick: setAll(model.default_layers) }, 'default'),
      h('button', { type: 'button', class: 'link-button small', onclick: setAll(model.layers) }, 'all'),
      h('button', { type: 'button', class: 'link-button small', onclick: setAll([]) }, 'none')),
    h('div', { class: 'layer-list', id: 'f-method-layers' }, boxes),
    h('div', { class: 'hint' }, `default for ${model.name}: ${model.default_layers.join(', ')}`),
    errorSlot('method.layers'));
}

// The layers ticked in `form`; null when they are the model's defaults (the spec then says nothing).
export function readLayers(form, model, fallback) {
  const boxes = [...form.querySelectorAll('#f-method-layers input[type=checkbox]')];
  if (!boxes.length) return fallback ?? null;
  const chosen = boxes.filter(b => b.checked).map(b => b.value);
  const defaults = model?.default_layers || [];
  const same = chosen.length === defaults.length && chosen.every(n => defaults.includes(n));
  return same ? null : chosen;
}
