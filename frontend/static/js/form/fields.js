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

function formatValue(p, value) {
  if (value === null || value === undefined) return '';
  if (p.type === 'list' || p.type === 'strlist') return Array.isArray(value) ? value.join(', ') : String(value);
  if (p.type === 'map') return Object.entries(value).map(([k, v]) => `${k}=${v}`).join(', ');
  if (Array.isArray(value)) return value.join(', ');
  return String(value);
}

export function readInput(input) {
  const type = input.dataset.type;
  if (type === 'bool') return input.type === 'checkbox' ? input.checked : input.value === '' ? null : input.value === 'true';
  const raw = input.value.trim();
  if (raw === '') return null;
  const asNumber = x => (x !== '' && Number.isFinite(Number(x)) ? Number(x) : x);
  if (type === 'int' || type === 'float') return input.type === 'number' || /^[-+0-9.eE]+$/.test(raw) ? asNumber(raw) : raw;
  if (type === 'strlist') return raw.split(/[,;]+/).map(x => x.trim()).filter(Boolean);
  if (type === 'list') return raw.split(/[,;\s]+/).filter(Boolean).map(asNumber);
  if (type === 'map') {
    const out = {};
    for (const part of raw.split(/[,;]+/)) {
      const [key, value = ''] = part.split(/[=:]/).map(s => s.trim());
      if (key) out[key] = asNumber(value);
    }
    return out;
  }
  return raw;
}

export function paramField(path, p, value, extraHint = '') {
  const id = `f-${path.replace(/\./g, '-')}`;
  const common = { id, name: path, 'data-path': path, 'data-type': p.type };
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
  } else if (p.type === 'int' || p.type === 'float') {
    input = h('input', { ...common, type: 'number', step: p.type === 'int' ? '1' : 'any', value: formatValue(p, value),
      placeholder: p.default === null ? 'default' : '', min: p.min ?? p.min_exclusive, max: p.max ?? p.max_exclusive });
  } else {
    const placeholder = p.type === 'map' ? 'layer=value, …' : p.type === 'list' || p.type === 'strlist' ? 'comma separated' : p.default === null ? 'default' : '';
    input = h('input', { ...common, type: 'text', value: formatValue(p, value), placeholder, spellcheck: false });
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
  const defaults = model.default_layers;
  const same = chosen.length === defaults.length && chosen.every(n => defaults.includes(n));
  return same ? null : chosen;
}
