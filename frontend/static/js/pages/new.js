// #/new: the job form, built from /api/catalog. Defaults filled in, parameters follow the chosen method and
// schedule, presets for the papers' experiments, ?from=ID clones a run. The API validates: each problem of
// its 422 is shown next to the field it names.
import { api, ApiError, canWrite, getCatalog, getMe, readOnlyReason } from '../api.js';
import { clearErrors, clearFieldError, setFieldError, showErrors } from '../form/errors.js';
import { errorSlot, FieldError, getPath, layersField, paramField, readInput, readLayers, setPath } from '../form/fields.js';
import { modelField, workersLine } from '../form/models.js';
import { catalogIndex, completeSpec, defaultSpec, defaultsOf } from '../form/spec.js';
import { sweepSection } from '../form/sweep.js';
import { predictScheduleOutcome } from '../format.js';
import { clear, fill, h } from '../ui.js';

// What happens after each pruning step: kept when the schedule kind changes.
const AFTER_PRUNING = ['after', 'finetune_epochs', 'finetune_lr', 'rewind_epoch'];

// The catalog describes block_size by its first type (int); it also takes [rows, cols].
const formParam = p => (p.name === 'block_size' ? { ...p, type: 'blocksize' } : p);

function kindField(path, label, options, current, onChange) {
  const id = `f-${path.replace('.', '-')}`;
  const select = h('select', { id, name: path, onchange: () => onChange(select.value) },
    options.map(o => h('option', { value: o.kind, selected: o.kind === current }, o.label)));
  return h('div', { class: 'field wide', 'data-field': path }, h('label', { for: id }, label), select, errorSlot(path));
}

// A spec handed over by the sensitivity page ("Run this allocation"): {source_job_id, spec}, or null.
function readAllocation(jobId) {
  try {
    const data = JSON.parse(sessionStorage.getItem('prunelab.allocation') || 'null');
    return data && data.source_job_id === jobId && data.spec ? data : null;
  } catch { return null; }
}

export async function render(root, params, { signal }) {
  root.append(h('p', { class: 'muted' }, 'Loading the catalog…'));
  const [catalog, me] = await Promise.all([getCatalog(), getMe().catch(() => null)]);
  const source = params.from ? await api(`/api/jobs/${Number(params.from)}`, { signal }) : null;
  const handoff = params.allocation ? readAllocation(Number(params.allocation)) : null;
  if (signal.aborted) return null;
  clear(root);

  const index = catalogIndex(catalog);
  const { models, methods, schedules, presets } = index;
  const presetSpec = name => presets.find(p => p.name === name)?.spec || {};
  let chosenPreset = params.preset || '';
  let spec = handoff ? completeSpec(index, handoff.spec)
    : source ? completeSpec(index, { ...source.spec, name: `${source.name} (copy)` })
    : params.preset ? completeSpec(index, presetSpec(params.preset)) : defaultSpec(index);

  const form = h('form', { id: 'new-run-form', class: 'new-run', novalidate: true });
  const formError = h('div', { class: 'form-error', id: 'form-error', role: 'alert', hidden: true });
  const preview = h('pre', { id: 'spec-preview', class: 'spec-preview' });
  const submitButton = h('button', { type: 'submit', class: 'primary', id: 'submit-run' }, 'Start run');
  const experimentBox = h('div', { class: 'fields' });
  const methodBox = h('div', { class: 'fields' });
  const scheduleBox = h('div', { class: 'fields' });
  const trainBox = h('div', { class: 'fields' });
  const measureBox = h('div', { class: 'fields' });
  const scheduleHint = h('div', { class: 'schedule-hint', id: 'schedule-hint' });
  // Fields a sweep may vary, offered as suggestions (any dotted spec path is allowed; the server checks it).
  const sweepPaths = ['seed', ...catalog.methods.flatMap(m => m.params.map(p => `method.${p.name}`)),
    ...catalog.schedules.flatMap(x => x.params.map(p => `schedule.${p.name}`)), ...catalog.train.params.map(p => `train.${p.name}`),
    'model', 'dataset'];
  const sweep = sweepSection({ onChange: () => update(), paths: [...new Set(sweepPaths)] });
  // A preset that is a sweep fills the Sweep rows; the spec itself never carries it.
  const takeSweep = () => { sweep.set(spec.sweep); delete spec.sweep; };
  takeSweep();

  root.append(
    h('section', { class: 'page-head' },
      h('h1', {}, handoff ? `New run from the allocation of #${handoff.source_job_id}` : source ? `New run from #${source.id}` : 'New run'),
      h('span', { class: 'muted' }, 'Everything here is the spec `prunelab run` takes; the server checks it before queueing.')),
    form);

  // ------------------------------------------------------------ sections

  const modelSearch = { query: '' }; // the model search box's text, kept across redraws
  const datasetHint = d => (!d ? '' : [d.label, d.classes ? `${d.classes} classes` : '',
    d.train_images ? `${d.train_images} train / ${d.test_images} test images` : '',
    d.builtin ? '' : d.present === false ? 'no online worker has its files' : d.present ? '' : 'read from the data directory'].filter(Boolean).join(' · '));

  function drawExperiment() {
    const presetSelect = h('select', { id: 'f-preset', onchange: () => {
      chosenPreset = presets.some(p => p.name === presetSelect.value) ? presetSelect.value : '';
      if (chosenPreset) { spec = completeSpec(index, structuredClone(presetSpec(chosenPreset))); takeSweep(); clearErrors(form, formError); drawAll(); }
    } }, h('option', { value: '' }, presets.length ? '— choose a preset —' : 'no presets'),
    presets.map(p => h('option', { value: p.name, selected: p.name === chosenPreset }, p.label || p.name)));
    const enumParam = (name, choices, extra = {}) => ({ name, type: 'enum', choices, default: null, ...extra });
    const dataset = catalog.datasets.find(d => d.name === spec.dataset);
    fill(experimentBox,
      h('div', { class: 'field wide' }, h('label', { for: 'f-preset' }, 'preset'), presetSelect,
        h('div', { class: 'hint' }, "The papers' experiments, sized for the built-in digits data; each says how long it took to its first point and to the end on the machine it was measured on.")),
      paramField('name', { name: 'name', type: 'str', default: 'experiment', help: '' }, spec.name),
      paramField('tags', { name: 'tags', type: 'strlist', default: [], help: 'to filter and group runs' }, spec.tags),
      modelField(catalog.models, spec.model, modelSearch),
      paramField('dataset', enumParam('dataset', catalog.datasets.map(d => d.name)), spec.dataset, datasetHint(dataset)),
      workersLine(catalog, spec),
      paramField('device', enumParam('device', catalog.devices, { default: 'auto', help: 'auto: a GPU worker if the server has one' }), spec.device),
      paramField('seed', { name: 'seed', type: 'int', default: 0, min: 0, help: '' }, spec.seed));
  }

  const layerHint = p => (p.type === 'map' && models[spec.model]?.layers ? `layers: ${models[spec.model].layers.join(', ')}` : '');

  function drawMethod() {
    fill(methodBox,
      kindField('method.kind', 'method', catalog.methods, spec.method.kind, kind => {
        spec.method = { kind, ...defaultsOf(methods[kind].params), layers: currentLayers() };
        drawMethod(); update();
      }),
      methods[spec.method.kind].params.filter(p => p.name !== 'layers')
        .map(p => paramField(`method.${p.name}`, formParam(p), spec.method[p.name], layerHint(p))),
      layersField(models[spec.model], spec.method.layers, update));
  }

  function drawSchedule() {
    // The schedule's own parameters first, then what happens after each pruning step.
    const ordered = [...schedules[spec.schedule.kind].params].sort((a, b) => AFTER_PRUNING.includes(a.name) - AFTER_PRUNING.includes(b.name));
    fill(scheduleBox,
      kindField('schedule.kind', 'schedule', catalog.schedules, spec.schedule.kind, kind => {
        const kept = Object.fromEntries(AFTER_PRUNING.map(k => [k, spec.schedule[k]]));
        spec.schedule = { kind, ...defaultsOf(schedules[kind].params), ...kept };
        drawSchedule(); update();
      }),
      ordered.map(p => paramField(`schedule.${p.name}`, p, spec.schedule[p.name], layerHint(p))),
      scheduleHint);
  }

  function drawTrain() {
    fill(trainBox, catalog.train.params.map(p => paramField(`train.${p.name}`, p, spec.train[p.name])));
    fill(measureBox, catalog.measure.params.map(p => paramField(`measure.${p.name}`, p, spec.measure[p.name])));
  }

  function drawAll() { drawExperiment(); drawMethod(); drawSchedule(); drawTrain(); update(); }

  // ------------------------------------------------------------ reading the form

  const currentLayers = () => readLayers(form, models[spec.model], spec.method.layers);

  // The spec the form says, and the fields whose text is not a value of their type: [{field, message}].
  function collect() {
    const out = { method: { kind: spec.method.kind }, schedule: { kind: spec.schedule.kind }, train: {}, measure: {} };
    const problems = [];
    for (const input of form.querySelectorAll('[data-path]')) {
      try { setPath(out, input.dataset.path, readInput(input)); } catch (err) {
        if (!(err instanceof FieldError)) throw err;
        problems.push({ field: input.dataset.path, message: err.message, allowed: null });
      }
    }
    out.tags = out.tags || [];
    out.method.layers = currentLayers();
    const swept = sweep.read();
    problems.push(...swept.problems);
    if (swept.sweep) out.sweep = swept.sweep;
    submitButton.textContent = swept.count > 1 ? `Start ${swept.count} runs` : 'Start run';
    return { spec: out, problems };
  }

  function update() {
    const { spec: current, problems } = collect();
    if (current.model !== spec.model) current.method.layers = null;
    // A field that does not parse keeps its last good value here, so redrawing a section keeps the user's text.
    const kept = structuredClone(spec);
    for (const { field } of problems) setPath(current, field, getPath(kept, field));
    spec = { ...spec, ...current, method: { ...current.method }, schedule: { ...current.schedule } };
    delete spec.sweep; // the Sweep rows hold it
    scheduleHint.textContent = predictScheduleOutcome(current.schedule);
    preview.textContent = JSON.stringify(current, null, 2)
      + (problems.length ? `\n\n// not submitted until fixed: ${problems.map(p => p.field).join(', ')}` : '');
    return problems;
  }

  // A field's own text, checked as it is typed: an unreadable value is marked at once.
  function checkField(input) {
    const path = input.dataset?.path;
    if (!path) return;
    try { readInput(input); } catch (err) { if (err instanceof FieldError) setFieldError(form, path, err.message); else throw err; }
  }

  form.addEventListener('change', event => checkField(event.target));
  form.addEventListener('input', event => {
    const path = event.target.dataset?.path || event.target.closest('[data-field]')?.dataset.field;
    if (path) clearFieldError(form, path);
    update();
    if (['model', 'dataset', 'device'].includes(event.target.name)) {
      if (event.target.name === 'model') spec.method.layers = null; // the new model's default layers
      drawExperiment(); drawMethod(); drawSchedule();
      update();
    }
  });

  // ------------------------------------------------------------ submitting

  // Readers may look at the form (and its spec as JSON) but not submit it.
  const mayWrite = !me || canWrite(me);
  if (!mayWrite) { submitButton.disabled = true; submitButton.title = readOnlyReason(me); }

  form.addEventListener('submit', async event => {
    event.preventDefault();
    clearErrors(form, formError);
    const { spec: body, problems } = collect();
    if (problems.length) { showErrors(form, formError, problems); return; }
    submitButton.disabled = true;
    submitButton.textContent = 'Submitting…';
    try {
      if (body.sweep) { // one group of runs, one per combination
        const created = await api('/api/groups', { method: 'POST', body, signal });
        location.hash = `#/runs?group=${created.group.id}`;
        return;
      }
      const path = handoff ? `/api/jobs?source_job_id=${handoff.source_job_id}` : '/api/jobs';
      const job = await api(path, { method: 'POST', body, signal });
      location.hash = `#/run/${job.id}`;
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status === 422 && err.errors.length) showErrors(form, formError, err.errors);
      else { formError.textContent = `Not submitted: ${err.message}`; formError.hidden = false; }
    } finally {
      submitButton.disabled = !mayWrite;
      update();
    }
  });

  const reset = () => { chosenPreset = ''; spec = defaultSpec(index); sweep.set(null); clearErrors(form, formError); drawAll(); };
  form.append(
    h('div', { class: 'form-grid' },
      h('fieldset', { class: 'card' }, h('legend', {}, 'Experiment'), experimentBox),
      h('fieldset', { class: 'card' }, h('legend', {}, 'Pruning method'), methodBox),
      h('fieldset', { class: 'card' }, h('legend', {}, 'Schedule'), scheduleBox),
      h('fieldset', { class: 'card' }, h('legend', {}, 'Baseline training'), trainBox,
        h('h3', { class: 'subhead' }, 'Measurement'), measureBox),
      h('fieldset', { class: 'card', id: 'sweep-fieldset' }, h('legend', {}, 'Sweep'), sweep.el)),
    formError,
    h('div', { class: 'submit-bar' }, submitButton,
      mayWrite ? null : h('span', { class: 'muted read-only-note', id: 'read-only-note' }, `Read only: ${readOnlyReason(me)}.`),
      h('button', { type: 'button', class: 'secondary', onclick: reset }, 'Reset to defaults'),
      h('details', { class: 'spec-details' }, h('summary', {}, 'Spec as JSON'), preview)));
  drawAll();
  return null;
}
