// #/workers: the workers the server knows (GET /api/workers): online or not by their last heartbeat, their
// device and queues, and the run each one is working on. Refreshed every few seconds while open.
import { api, ApiError } from '../api.js';
import { ago, bytes, dash } from '../format.js';
import { errorBox, fill, h } from '../ui.js';

const REFRESH_MS = 5000;

const listOf = data => (Array.isArray(data) ? data : data?.items || data?.workers || []);

function device(w) {
  const gpu = w.gpu_name ? `${w.gpu_name}${w.gpu_memory_bytes ? ` (${bytes(w.gpu_memory_bytes)})` : ''}` : null;
  return [w.device, gpu].filter(Boolean).join(' · ') || dash;
}

export function workersTable(workers) {
  const sorted = [...workers].sort((a, b) => Number(Boolean(b.online)) - Number(Boolean(a.online)) || String(a.name).localeCompare(String(b.name)));
  return h('table', { class: 'workers', id: 'workers-table' },
    h('thead', {}, h('tr', {}, ['worker', 'state', 'running', 'queues', 'device', 'torch', 'concurrency', 'started', 'last heartbeat'].map(t => h('th', {}, t)))),
    h('tbody', {}, sorted.map(w => h('tr', { 'data-worker': w.name, class: w.online ? 'online' : 'offline' },
      h('td', { class: 'name-cell' }, h('b', {}, w.name), h('div', { class: 'small muted' }, `${w.host ?? dash} · pid ${w.pid ?? dash}`)),
      h('td', {}, h('span', { class: `worker-state ${w.online ? 'is-online' : 'is-offline'}` }, w.online ? 'online' : 'offline')),
      h('td', {}, w.current_job_id ? h('a', { href: `#/run/${w.current_job_id}`, class: 'worker-job' }, `run #${w.current_job_id}`)
        : h('span', { class: 'muted' }, w.online ? 'idle' : dash)),
      h('td', {}, (w.queues || []).map(q => h('span', { class: 'tag' }, q))),
      h('td', {}, device(w)),
      h('td', { class: 'muted' }, w.torch_version || dash),
      h('td', { class: 'num' }, w.concurrency ?? dash),
      h('td', { class: 'muted nowrap', title: w.started_at || '' }, ago(w.started_at)),
      h('td', { class: 'muted nowrap', title: w.last_heartbeat || '' }, ago(w.last_heartbeat))))));
}

export async function render(root, params, { signal }) {
  const count = h('span', { class: 'muted', id: 'workers-count' });
  const box = h('div', { class: 'table-box', id: 'workers-box' }, h('p', { class: 'muted pad' }, 'Loading workers…'));
  root.append(h('section', { class: 'page-head' }, h('h1', {}, 'Workers'), count), box);
  let timer = null;

  async function load() {
    try {
      const workers = listOf(await api('/api/workers', { signal }));
      const online = workers.filter(w => w.online).length;
      count.textContent = workers.length ? `${online} online, ${workers.length - online} offline` : '';
      fill(box, workers.length ? workersTable(workers) : h('div', { class: 'empty', id: 'workers-empty' },
        'No worker has registered yet: prunelab serve starts one, and prunelab worker runs one on any other machine.'));
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status === 404) {
        count.textContent = '';
        fill(box, h('div', { class: 'empty', id: 'workers-empty' }, 'This server does not list its workers (no /api/workers).'));
        return; // nothing will change: no refresh
      }
      fill(box, errorBox(err));
    }
    if (!signal.aborted) timer = setTimeout(load, REFRESH_MS);
  }
  await load();
  return () => clearTimeout(timer);
}
