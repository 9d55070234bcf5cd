// The run page's head: name, status, progress, what the run is, its actions (cancel, retry, clone, compare,
// delete) and, for a failed run, its error. Buttons the server would refuse are not shown: readers may not
// write, only the owner or an admin may change a run.
import { api, canModify, canWrite, problemText, readOnlyReason } from '../api.js';
import { isActive } from '../constants.js';
import { ago, bytes, describeMethod, describeSchedule, duration, queueText, runTime } from '../format.js';
import { forgetSelected, loadSelection, sortedIds } from '../selection.js';
import { fill, h, methodChip, progressBar, statusBadge } from '../ui.js';

// A button that runs an async handler once at a time; a failure shows under the head.
function actionButton(header, label, handler, extra = {}) {
  return h('button', { type: 'button', class: 'secondary', ...extra, onclick: async event => {
    const button = event.currentTarget;
    button.disabled = true;
    try { await handler(); } catch (err) { if (err.name !== 'AbortError') showActionError(header, err); } finally { button.disabled = false; }
  } }, label);
}

function showActionError(header, err) {
  header.querySelector('.action-error')?.remove();
  if (err.status === 401 || err.status === 403) return; // the page banner says it already
  header.append(h('div', { class: 'error-box action-error' }, err.message));
}

function deleteButton(header, job, signal) {
  const box = h('span', { class: 'confirm' });
  const ask = h('button', { type: 'button', class: 'danger-outline', id: 'delete-run', onclick: () => {
    fill(box, h('span', { class: 'small' }, 'Delete this run, its steps and checkpoints? '),
      actionButton(header, 'Delete', async () => {
        await api(`/api/jobs/${job.id}`, { method: 'DELETE', signal });
        forgetSelected(job.id);
        location.hash = '#/runs';
      }, { class: 'danger', id: 'delete-confirm' }),
      h('button', { type: 'button', class: 'link-button', onclick: () => fill(box, ask) }, 'keep it'));
  } }, 'Delete');
  box.append(ask);
  return box;
}

function lockedNote(me, job) {
  if (canModify(me, job)) return null;
  const owner = job.owner || 'nobody';
  const why = canWrite(me) ? `this run belongs to ${owner}; only its owner or an admin may change it` : readOnlyReason(me);
  return h('span', { class: 'muted read-only-note', id: 'read-only-note', title: why }, canWrite(me) ? `owned by ${owner}` : 'read only');
}

// onChanged(job): the job as the server answered a cancel or retry.
export function drawRunHeader(header, { job, me, signal, onChanged }) {
  const mayChange = canModify(me, job);
  const seconds = runTime(job);
  const post = action => async () => onChanged(await api(`/api/jobs/${job.id}/${action}`, { method: 'POST', signal }));
  document.title = `${job.name} #${job.id} (${job.status}) · PruneLab`;
  fill(header,
    h('div', { class: 'run-title' },
      h('a', { href: '#/runs', class: 'back' }, '← Runs'),
      h('h1', {}, job.name), h('span', { class: 'muted' }, `#${job.id}`), statusBadge(job.status),
      h('div', { class: 'spacer' }),
      job.schedule === 'sensitivity' ? h('a', { class: 'button primary', id: 'open-sensitivity', href: `#/sensitivity/${job.id}`, title: 'the grid and a per-layer allocation chosen from it' }, 'Sensitivity & allocation') : null,
      lockedNote(me, job),
      isActive(job.status) && mayChange ? actionButton(header, 'Cancel', post('cancel'), { id: 'cancel-run' }) : null,
      mayChange && (job.status === 'failed' || job.status === 'cancelled') ? actionButton(header, 'Retry', post('retry'), { id: 'retry-run' }) : null,
      canWrite(me) ? h('a', { class: 'button secondary', id: 'clone-run', href: `#/new?from=${job.id}`, title: 'a new run with this spec, to change and submit' }, 'Clone') : null,
      h('a', { class: 'button secondary', id: 'compare-with', title: 'compare with the runs selected in the list',
        href: `#/compare?ids=${sortedIds(new Set([...loadSelection(), job.id])).join(',')}` }, 'Compare'),
      mayChange ? h('button', { type: 'button', class: 'secondary', id: 'edit-run-button', title: 'change the name, tags and notes',
        onclick: () => {
          if (header.querySelector('#edit-run')) return;
          const close = () => form.remove();
          const form = editForm(job, { signal, onClose: close, onSaved: next => { close(); onChanged(next); } });
          header.querySelector('.run-title').after(form);
          form.querySelector('input').focus();
        } }, 'Edit') : null,
      mayChange ? deleteButton(header, job, signal) : null),
    h('div', { class: 'run-progress' }, progressBar(job),
      h('span', { class: 'small muted', id: 'run-message' }, job.message || '')),
    h('div', { class: 'run-meta small' },
      h('span', {}, h('b', {}, job.model), ` on ${job.dataset}`), methodChip(job.method),
      h('span', {}, describeMethod(job.spec)), h('span', {}, describeSchedule(job.spec)),
      h('span', { class: 'muted' }, `created ${ago(job.created_at)}`),
      seconds !== null ? h('span', { class: 'muted' }, `${job.finished_at ? 'ran' : 'running for'} ${duration(seconds)}`) : null,
      job.owner ? h('span', { class: 'muted' }, `by ${job.owner}`) : null,
      job.source_job_id ? h('a', { id: 'source-job', href: `#/sensitivity/${job.source_job_id}`, title: 'the sensitivity scan this per-layer allocation came from' }, `allocation from #${job.source_job_id}`) : null,
      job.attempts > 1 ? h('span', { class: 'muted', title: 'times a worker started this run (retries, crash recovery)' }, `attempt ${job.attempts}`) : null,
      typeof job.disk_bytes === 'number' ? h('span', { class: 'muted', id: 'run-disk', title: 'disk used on the server by this run\'s checkpoints and files' }, `disk ${bytes(job.disk_bytes)}`) : null,
      (job.tags || []).map(tag => h('a', { class: 'tag', href: `#/runs?tag=${encodeURIComponent(tag)}` }, tag))),
    job.notes ? h('p', { class: 'run-notes small', id: 'run-notes' }, job.notes) : null,
    job.status === 'queued' ? queueNote(job) : null,
    job.status === 'failed' ? h('div', { class: 'error-box job-error', id: 'job-error', title: job.error || '' },
      h('b', {}, 'This run failed: '), h('span', { class: 'job-error-text' }, firstLine(job.error) || 'no error text was stored')) : null);
}

const firstLine = text => String(text || '').split('\n').find(line => line.trim()) || '';

function queueNote(job) {
  const text = queueText(job);
  return text ? h('div', { class: 'queue-note small', id: 'queue-position' }, text) : null;
}

// ---------------------------------------------------------------- name, tags and notes, edited in place

// The PATCH body: only the fields that changed ({name?, tags?, notes?}); null when nothing did.
export function editedFields(job, { name, tags, notes }) {
  const body = {};
  const tagList = tags.split(/[,;]+/).map(t => t.trim()).filter(Boolean);
  if (name.trim() !== job.name) body.name = name.trim();
  if (tagList.join('\u0000') !== (job.tags || []).join('\u0000')) body.tags = tagList;
  if (notes !== (job.notes || '')) body.notes = notes;
  return Object.keys(body).length ? body : null;
}

export function editForm(job, { signal, onSaved, onClose }) {
  const name = h('input', { id: 'edit-name', type: 'text', value: job.name, 'aria-label': 'name', spellcheck: false });
  const tags = h('input', { id: 'edit-tags', type: 'text', value: (job.tags || []).join(', '), 'aria-label': 'tags', placeholder: 'comma separated' });
  const notes = h('textarea', { id: 'edit-notes', rows: 3, 'aria-label': 'notes', placeholder: 'what this run is for, what you saw' });
  notes.value = job.notes || '';
  const error = h('div', { class: 'field-error', id: 'edit-error', role: 'alert' });
  const save = h('button', { type: 'submit', class: 'primary', id: 'edit-save' }, 'Save');
  const form = h('form', { class: 'edit-run', id: 'edit-run', onsubmit: async event => {
    event.preventDefault();
    error.textContent = '';
    const body = editedFields(job, { name: name.value, tags: tags.value, notes: notes.value });
    if (!body) { onClose(); return; }
    if (body.name === '') { error.textContent = 'name: give the run a name'; name.focus(); return; }
    save.disabled = true;
    try {
      onSaved(await api(`/api/jobs/${job.id}`, { method: 'PATCH', body, signal }));
    } catch (err) {
      if (err.name === 'AbortError') return;
      error.textContent = err.status === 404 || err.status === 405
        ? `Not saved: this server cannot edit runs yet (PATCH /api/jobs/${job.id} answered ${err.status}).`
        : `Not saved: ${err.errors?.length ? err.errors.map(e => problemText(e)).join('; ') : err.message}`;
    } finally { save.disabled = false; }
  } },
  h('label', { class: 'field' }, h('span', {}, 'name'), name),
  h('label', { class: 'field' }, h('span', {}, 'tags'), tags),
  h('label', { class: 'field wide' }, h('span', {}, 'notes'), notes),
  h('div', { class: 'edit-actions' }, save, h('button', { type: 'button', class: 'secondary', onclick: onClose }, 'Cancel'), error));
  return form;
}

// Between full redraws: only the progress bar and the message change.
export function updateRunProgress(header, job) {
  header.querySelector('.progress')?.replaceWith(progressBar(job));
  const message = header.querySelector('#run-message');
  if (message) message.textContent = job.message || '';
}
