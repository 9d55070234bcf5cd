// The New run form's model picker (a search box over a list grouped by source: built-in, torchvision,
// plugins) and the line that says which online workers can take the job (GET /api/catalog lists, for each
// model and dataset, the online workers offering it).
import { errorSlot } from './fields.js';
import { h } from '../ui.js';

const SOURCES = [['builtin', 'built-in'], ['torchvision', 'torchvision'], ['plugin', 'plugins']];
const QUEUE_OF_DEVICE = { cuda: 'gpu', cpu: 'cpu', auto: 'default' };

function options(models, query, current) {
  const q = query.trim().toLowerCase();
  const match = m => m.name === current || !q || m.name.toLowerCase().includes(q) || (m.label || '').toLowerCase().includes(q);
  return SOURCES.map(([source, title]) => {
    const shown = models.filter(m => (m.source || 'builtin') === source && match(m));
    return shown.length ? h('optgroup', { label: `${title} (${shown.length})` },
      shown.map(m => h('option', { value: m.name, selected: m.name === current, title: m.label || '' }, m.name))) : null;
  }).filter(Boolean);
}

// A search box (no name: not part of the spec) filtering the select named "model" in place.
export function modelField(models, current, state) {
  const select = h('select', { id: 'f-model', name: 'model', 'data-path': 'model', 'data-type': 'enum' },
    options(models, state.query || '', current));
  const search = h('input', { id: 'f-model-search', type: 'search', placeholder: 'search models, e.g. resnet',
    value: state.query || '', autocomplete: 'off', spellcheck: false, 'aria-label': 'search models' });
  search.addEventListener('input', event => {
    event.stopPropagation(); // filtering changes no field of the spec
    state.query = search.value;
    select.replaceChildren(...options(models, state.query, select.value));
  });
  const model = models.find(m => m.name === current);
  const counts = SOURCES.map(([s, title]) => `${models.filter(m => (m.source || 'builtin') === s).length} ${title}`).join(', ');
  return h('div', { class: 'field wide', 'data-field': 'model' },
    h('label', { for: 'f-model' }, 'model'), search, select,
    h('div', { class: 'hint' }, [model?.label, model?.params ? `${(model.params / 1e6).toFixed(1)} M parameters` : '', counts]
      .filter(Boolean).join(' · ')),
    errorSlot('model'));
}

// Which online workers offer both the model and the dataset, and whether they listen on the job's queue.
export function workersLine(catalog, spec) {
  const workers = catalog.workers || [];
  const model = catalog.models.find(m => m.name === spec.model);
  const dataset = catalog.datasets.find(d => d.name === spec.dataset);
  let text;
  if (!workers.some(w => w.published)) {
    text = workers.length ? `${workers.length} online worker(s), none has published its catalog yet`
      : 'No online worker has published its catalog: built-in models and the digits dataset are accepted; the job waits for a worker.';
  } else {
    const both = (model?.workers || []).filter(w => (dataset?.workers || []).includes(w));
    const queue = QUEUE_OF_DEVICE[spec.device] || 'default';
    const byName = Object.fromEntries(workers.map(w => [w.name, w]));
    text = both.length
      ? `Can run it: ${both.map(n => `${n} (${byName[n]?.device || 'device?'}${byName[n]?.queues.includes(queue) ? '' : `; not on queue ${queue}`})`).join(', ')}`
      : `No online worker offers both ${spec.model} and ${spec.dataset}.`;
  }
  return h('div', { class: 'hint wide', id: 'f-workers', role: 'status' }, text);
}
