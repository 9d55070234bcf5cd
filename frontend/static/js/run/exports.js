// The run page's "Export ONNX / TorchScript / state_dict" buttons for the inspected step. The server's
// workers export (the API has no torch): POST queues it, then GET is polled until the file is there.
import { api, authHeaders, download, errorsOf } from '../api.js';
import { h } from '../ui.js';

const FORMATS = [['onnx', 'ONNX'], ['torchscript', 'TorchScript'], ['state_dict', 'state_dict']];
const SUFFIX = { onnx: '.onnx', torchscript: '.torchscript.pt', state_dict: '.state_dict.pt' };
const POLL_MS = 1500;
const GIVE_UP_MS = 10 * 60 * 1000;

async function exportStep(jobId, step, format, status, isStopped) {
  const url = `/api/jobs/${jobId}/steps/${step}/export?format=${format}`;
  const name = `prunelab-job-${jobId}-step-${step}${SUFFIX[format]}`;
  status.textContent = `exporting step ${step} as ${format}…`;
  await api(url, { method: 'POST' });
  const started = Date.now();
  while (!isStopped() && Date.now() - started < GIVE_UP_MS) {
    const res = await fetch(url, { headers: authHeaders() });
    if (res.ok) {
      await res.body?.cancel();
      await download(url, name);
      status.textContent = `step ${step} exported as ${format}`;
      return;
    }
    const body = await res.json().catch(() => null);
    const message = errorsOf(body)[0]?.message || `${res.status} ${res.statusText}`;
    if (res.status !== 404 || !message.startsWith('not exported yet')) { status.textContent = message; return; }
    await new Promise(resolve => setTimeout(resolve, POLL_MS));
  }
  if (!isStopped()) status.textContent = 'no worker has exported it yet: is a worker running on this job\'s queue?';
}

// Buttons for 1-based step `step` (null: no step yet). isStopped(): the page was left.
export function exportButtons(jobId, step, { disabled = false, isStopped = () => false } = {}) {
  const status = h('span', { class: 'small muted', id: 'export-status', role: 'status' });
  const buttons = FORMATS.map(([format, label]) => h('button', {
    type: 'button', class: 'secondary small-button', id: `export-${format}`, disabled: disabled || step === null,
    title: step === null ? 'no step yet' : `export the model of step ${step} (a worker writes the file)`,
    onclick: () => exportStep(jobId, step, format, status, isStopped).catch(err => { status.textContent = err.message; }),
  }, `Export ${label}`));
  return h('span', { class: 'exports', id: 'exports' }, ...buttons, status);
}
