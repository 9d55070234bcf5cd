// #/new: the job form, built from /api/catalog. Defaults filled in, parameters follow the chosen method and
// schedule, presets for the seed experiments, ?from=ID clones a run. The API validates: its 422 is shown
// next to the field its `loc` names.
import { api, ApiError, canWrite, getCatalog, getMe, readOnlyReason } from '../api.js';
import { clear, fill, h, pct } from '../ui.js';

// Discriminator tags pydantic may put into an error location.
const KIND_TAGS = new Set(['block', 'magnitude', 'channel', 'group_lasso', 'oneshot', 'iterative']);

const label = name => name.replace(/_/g, ' ');

function getPath(obj, path) {
  return path.split('.').reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

function setPath(obj, path, value) {
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

function readInput(input) {
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

function paramField(path, p, value, extraHint = '') {
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
    h('div', { class: 'field-error', 'data-error-for': path, role: 'alert' }));
}

function defaultsOf(params) {
  return Object.fromEntries(params.map(p => [p.name, p.default]));
}

export async function render(root, params, { signal }) {
  root.append(h('p', { class: 'muted' }, 'Loading the catalog…'));
  const [catalog, me] = await Promise.all([getCatalog(), getMe().catch(() => null)]);
  let source = null;
  if (params.from) source = await api(`/api/jobs/${Number(params.from)}`, { signal });
  if (signal.aborted) return null;
  clear(root);

  const models = Object.fromEntries(catalog.models.map(m => [m.name, m]));
  const methods = Object.fromEntries(catalog.methods.map(m => [m.kind, m]));
  const schedules = Object.fromEntries(catalog.schedules.map(s => [s.kind, s]));
  const presets = catalog.presets || [];

  function defaultSpec() {
    const preset = presets[0]?.spec;
    const method = preset?.method?.kind || catalog.methods[0].kind;
    const schedule = preset?.schedule?.kind || catalog.schedules[0].kind;
    return {
      name: 'experiment', model: preset?.model || catalog.models[0].name, dataset: preset?.dataset || catalog.datasets[0].name,
      tags: [], seed: 0, device: 'auto',
      method: { kind: method, ...defaultsOf(methods[method].params) },
      schedule: { kind: schedule, ...defaultsOf(schedules[schedule].params) },
      train: defaultsOf(catalog.train.params), measure: defaultsOf(catalog.measure.params),
    };
  }

  // A full spec from a partial one (a preset, a cloned run): defaults wherever it says nothing.
  function complete(partial) {
    const base = defaultSpec();
    const method = partial.method?.kind || base.method.kind;
    const schedule = partial.schedule?.kind || base.schedule.kind;
    return {
      ...base, ...partial,
      method: { kind: method, ...defaultsOf(methods[method].params), ...(partial.method || {}) },
      schedule: { kind: schedule, ...defaultsOf(schedules[schedule].params), ...(partial.schedule || {}) },
      train: { ...base.train, ...(partial.train || {}) },
      measure: { ...base.measure, ...(partial.measure || {}) },
    };
  }

  let chosenPreset = params.preset || '';
  let spec = source ? complete(source.spec) : params.preset ? complete(presets.find(p => p.name === params.preset)?.spec || {}) : defaultSpec();

  const form = h('form', { id: 'new-run-form', class: 'new-run', novalidate: true });
  const formError = h('div', { class: 'form-error', id: 'form-error', role: 'alert', hidden: true });
  const preview = h('pre', { id: 'spec-preview', class: 'spec-preview' });
  const submitButton = h('button', { type: 'submit', class: 'primary', id: 'submit-run' }, 'Start run');

  root.append(
    h('section', { class: 'page-head' },
      h('h1', {}, source ? `New run from #${source.id}` : 'New run'),
      h('span', { class: 'muted' }, 'Everything here is the spec `prunelab run` takes; the server checks it before queueing.')),
    form);

  // ------------------------------------------------------------ sections

  const experimentBox = h('div', { class: 'fields' });
  const methodBox = h('div', { class: 'fields' });
  const scheduleBox = h('div', { class: 'fields' });
  const trainBox = h('div', { class: 'fields' });
  const measureBox = h('div', { class: 'fields' });
  const scheduleHint = h('div', { class: 'schedule-hint', id: 'schedule-hint' });

  function drawExperiment() {
    const presetSelect = h('select', { id: 'f-preset', onchange: () => {
      const preset = presets.find(p => p.name === presetSelect.value);
      chosenPreset = preset ? preset.name : '';
      if (preset) { spec = complete(structuredClone(preset.spec)); clearErrors(); drawAll(); }
    } }, h('option', { value: '' }, presets.length ? '— choose a preset —' : 'no presets'),
    presets.map(p => h('option', { value: p.name, selected: p.name === chosenPreset }, p.label || p.name)));
    const modelParam = { name: 'model', type: 'enum', choices: catalog.models.map(m => m.name), default: null };
    const datasetParam = { name: 'dataset', type: 'enum', choices: catalog.datasets.map(d => d.name), default: null };
    const dataset = catalog.datasets.find(d => d.name === spec.dataset);
    fill(experimentBox, 
      h('div', { class: 'field wide' }, h('label', { for: 'f-preset' }, 'preset'), presetSelect,
        h('div', { class: 'hint' }, 'Seed experiments sized for the built-in digits data: curves within a minute on a laptop.')),
      paramField('name', { name: 'name', type: 'str', default: 'experiment', help: '' }, spec.name),
      paramField('tags', { name: 'tags', type: 'strlist', default: [], help: 'to filter and group runs' }, spec.tags),
      paramField('model', modelParam, spec.model, models[spec.model]?.label),
      paramField('dataset', datasetParam, spec.dataset,
        dataset ? `${dataset.label}${dataset.builtin ? '' : '; downloaded into the data directory on first use'}` : ''),
      paramField('device', { name: 'device', type: 'enum', choices: catalog.devices, default: 'auto', help: 'auto: a GPU worker if the server has one' }, spec.device),
      paramField('seed', { name: 'seed', type: 'int', default: 0, min: 0, help: '' }, spec.seed));
  }

  function layersField() {
    const model = models[spec.model];
    const chosen = new Set(spec.method.layers || model.default_layers);
    const boxes = model.layers.map(name => h('label', { class: 'layer-choice' },
      h('input', { type: 'checkbox', value: name, checked: chosen.has(name), 'data-layer': name }), name));
    const setAll = names => () => {
      boxes.forEach(label => { const box = label.querySelector('input'); box.checked = names.includes(box.value); });
      update();
    };
    return h('div', { class: 'field wide', 'data-field': 'method.layers' },
      h('label', {}, 'layers to prune ',
        h('button', { type: 'button', class: 'link-button small', onclick: setAll(model.default_layers) }, 'default'),
        h('button', { type: 'button', class: 'link-button small', onclick: setAll(model.layers) }, 'all'),
        h('button', { type: 'button', class: 'link-button small', onclick: setAll([]) }, 'none')),
      h('div', { class: 'layer-list', id: 'f-method-layers' }, boxes),
      h('div', { class: 'hint' }, `default for ${spec.model}: ${model.default_layers.join(', ')}`),
      h('div', { class: 'field-error', 'data-error-for': 'method.layers', role: 'alert' }));
  }

  function drawMethod() {
    const kindSelect = h('select', { id: 'f-method-kind', name: 'method.kind', onchange: () => {
      const layers = readLayers();
      spec.method = { kind: kindSelect.value, ...defaultsOf(methods[kindSelect.value].params), layers };
      drawMethod(); update();
    } }, catalog.methods.map(m => h('option', { value: m.kind, selected: m.kind === spec.method.kind }, m.label)));
    const layerHint = `layers: ${models[spec.model].layers.join(', ')}`;
    fill(methodBox, 
      h('div', { class: 'field wide', 'data-field': 'method.kind' }, h('label', { for: 'f-method-kind' }, 'method'), kindSelect,
        h('div', { class: 'field-error', 'data-error-for': 'method.kind' })),
      methods[spec.method.kind].params.filter(p => p.name !== 'layers')
        .map(p => paramField(`method.${p.name}`, p, spec.method[p.name], p.type === 'map' ? layerHint : '')),
      layersField());
  }

  const AFTER_PRUNING = ['after', 'finetune_epochs', 'finetune_lr', 'rewind_epoch'];

  function drawSchedule() {
    const kindSelect = h('select', { id: 'f-schedule-kind', name: 'schedule.kind', onchange: () => {
      const kept = Object.fromEntries(AFTER_PRUNING.map(k => [k, spec.schedule[k]]));
      spec.schedule = { kind: kindSelect.value, ...defaultsOf(schedules[kindSelect.value].params), ...kept };
      drawSchedule(); update();
    } }, catalog.schedules.map(s => h('option', { value: s.kind, selected: s.kind === spec.schedule.kind }, s.label)));
    const layerHint = `layers: ${models[spec.model].layers.join(', ')}`;
    fill(scheduleBox, 
      h('div', { class: 'field wide', 'data-field': 'schedule.kind' }, h('label', { for: 'f-schedule-kind' }, 'schedule'), kindSelect,
        h('div', { class: 'field-error', 'data-error-for': 'schedule.kind' })),
      // The schedule's own parameters first, then what happens after each pruning step.
      [...schedules[spec.schedule.kind].params].sort((a, b) => AFTER_PRUNING.includes(a.name) - AFTER_PRUNING.includes(b.name)).map(p => paramField(`schedule.${p.name}`, p, spec.schedule[p.name], p.type === 'map' ? layerHint : '')),
      scheduleHint);
  }

  function drawTrain() {
    fill(trainBox, catalog.train.params.map(p => paramField(`train.${p.name}`, p, spec.train[p.name])));
    fill(measureBox, catalog.measure.params.map(p => paramField(`measure.${p.name}`, p, spec.measure[p.name])));
  }

  function drawAll() { drawExperiment(); drawMethod(); drawSchedule(); drawTrain(); update(); }

  // ------------------------------------------------------------ reading the form

  function readLayers() {
    const boxes = [...form.querySelectorAll('#f-method-layers input[type=checkbox]')];
    if (!boxes.length) return spec.method.layers ?? null;
    const chosen = boxes.filter(b => b.checked).map(b => b.value);
    const defaults = models[spec.model].default_layers;
    const same = chosen.length === defaults.length && chosen.every(n => defaults.includes(n));
    return same ? null : chosen;
  }

  function collect() {
    const out = { method: { kind: spec.method.kind }, schedule: { kind: spec.schedule.kind }, train: {}, measure: {} };
    for (const input of form.querySelectorAll('[data-path]')) setPath(out, input.dataset.path, readInput(input));
    out.tags = out.tags || [];
    out.method.layers = readLayers();
    return out;
  }

  function scheduleSummary(s) {
    if (s.kind === 'iterative' && typeof s.rate === 'number' && s.rate > 0 && s.rate < 1) {
      const rounds = typeof s.rounds === 'number' ? s.rounds : null;
      const reach = rounds ? 1 - (1 - s.rate) ** rounds : null;
      const target = typeof s.target === 'number' ? s.target : null;
      const final = target !== null && (reach === null || target < reach) ? target : reach;
      const steps = target !== null && final === target ? Math.ceil(Math.log(1 - target) / Math.log(1 - s.rate)) : rounds;
      return final === null ? '' : `→ about ${pct(final)} of the pruned layers' weights removed after ${steps} step${steps === 1 ? '' : 's'}`;
    }
    if (s.kind === 'oneshot' && Array.isArray(s.sparsities)) return `→ ${s.sparsities.length} step${s.sparsities.length === 1 ? '' : 's'}, each from the same baseline`;
    return '';
  }

  function update() {
    const current = collect();
    if (current.model !== spec.model) current.method.layers = null;
    spec = { ...spec, ...current, method: { ...current.method }, schedule: { ...current.schedule } };
    scheduleHint.textContent = scheduleSummary(current.schedule);
    preview.textContent = JSON.stringify(current, null, 2);
  }

  form.addEventListener('input', event => {
    const path = event.target.dataset?.path || event.target.closest('[data-field]')?.dataset.field;
    if (path) clearFieldError(path);
    update();
    if (event.target.name === 'model' || event.target.name === 'dataset') {
      if (event.target.name === 'model') spec.method.layers = null; // the new model's default layers
      drawExperiment(); drawMethod(); drawSchedule();
      update();
    }
  });

  // ------------------------------------------------------------ errors from the API

  function clearFieldError(path) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
    if (slot) slot.textContent = '';
    slot?.closest('.field')?.classList.remove('invalid');
  }

  function clearErrors() {
    form.querySelectorAll('.field-error').forEach(el => { el.textContent = ''; });
    form.querySelectorAll('.field.invalid').forEach(el => el.classList.remove('invalid'));
    formError.hidden = true;
    formError.textContent = '';
  }

  function showErrors(detail) {
    const problems = Array.isArray(detail) ? detail : [{ loc: [], msg: String(detail) }];
    let first = null;
    const unplaced = [];
    for (const problem of problems) {
      const parts = (problem.loc || []).map(String).filter(p => p !== 'body' && !KIND_TAGS.has(p));
      let slot = null;
      for (let n = parts.length; n > 0 && !slot; n--) slot = form.querySelector(`[data-error-for="${CSS.escape(parts.slice(0, n).join('.'))}"]`);
      if (!slot) { unplaced.push(`${parts.join('.') || 'spec'}: ${problem.msg}`); continue; }
      slot.textContent = slot.textContent ? `${slot.textContent}; ${problem.msg}` : problem.msg;
      slot.closest('.field').classList.add('invalid');
      first ??= slot.closest('.field');
    }
    if (unplaced.length) { formError.textContent = unplaced.join('\n'); formError.hidden = false; first ??= formError; }
    first?.scrollIntoView({ block: 'center', behavior: 'instant' });
    first?.querySelector?.('input, select')?.focus({ preventScroll: true });
  }

  form.addEventListener('submit', async event => {
    event.preventDefault();
    clearErrors();
    const body = collect();
    submitButton.disabled = true;
    submitButton.textContent = 'Submitting…';
    try {
      const job = await api('/api/jobs', { method: 'POST', body, signal });
      location.hash = `#/run/${job.id}`;
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status === 422) showErrors(err.body?.detail ?? err.message);
      else { formError.textContent = `Not submitted: ${err.message}`; formError.hidden = false; }
    } finally {
      submitButton.disabled = !mayWrite;
      submitButton.textContent = 'Start run';
    }
  });

  // Readers may look at the form (and its spec as JSON) but not submit it.
  const mayWrite = !me || canWrite(me);
  const readOnly = mayWrite ? null : h('span', { class: 'muted read-only-note', id: 'read-only-note' },
    `Read only: ${readOnlyReason(me)}.`);
  if (!mayWrite) { submitButton.disabled = true; submitButton.title = readOnlyReason(me); }

  form.append(
    h('div', { class: 'form-grid' },
      h('fieldset', { class: 'card' }, h('legend', {}, 'Experiment'), experimentBox),
      h('fieldset', { class: 'card' }, h('legend', {}, 'Pruning method'), methodBox),
      h('fieldset', { class: 'card' }, h('legend', {}, 'Schedule'), scheduleBox),
      h('fieldset', { class: 'card' }, h('legend', {}, 'Baseline training'), trainBox,
        h('h3', { class: 'subhead' }, 'Measurement'), measureBox)),
    formError,
    h('div', { class: 'submit-bar' }, submitButton, readOnly,
      h('button', { type: 'button', class: 'secondary', onclick: () => { chosenPreset = ''; spec = defaultSpec(); clearErrors(); drawAll(); } }, 'Reset to defaults'),
      h('details', { class: 'spec-details' }, h('summary', {}, 'Spec as JSON'), preview)));
  drawAll();
  return null;
}

