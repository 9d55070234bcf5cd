// The API's verdict on a submitted spec, shown where it belongs: every bad field gets its message next to
// it (and is marked invalid); problems no field owns go to the form's own error box.
import { problemText } from '../api.js';

// Discriminator tags pydantic may put into an error location ("method.block.block_size").
const KIND_TAGS = new Set(['block', 'magnitude', 'channel', 'group_lasso', 'oneshot', 'iterative']);

function slotFor(form, field) {
  const parts = String(field || '').split('.').filter(p => p && !KIND_TAGS.has(p));
  // "method.layer_sparsity.fc1" has no slot of its own: the deepest field that has one takes it.
  for (let n = parts.length; n > 0; n--) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(parts.slice(0, n).join('.'))}"]`);
    if (slot) return slot;
  }
  return null;
}

export function clearFieldError(form, path) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
  if (slot) slot.textContent = '';
  slot?.closest('.field')?.classList.remove('invalid');
}

export function setFieldError(form, path, text) {
  const slot = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
  if (!slot) return;
  slot.textContent = text;
  slot.closest('.field')?.classList.add('invalid');
}

export function clearErrors(form, formError) {
  form.querySelectorAll('.field-error').forEach(el => { el.textContent = ''; });
  form.querySelectorAll('.field.invalid').forEach(el => el.classList.remove('invalid'));
  formError.hidden = true;
  formError.textContent = '';
}

// problems: [{field, message, allowed}] (ApiError.errors). Returns the number placed next to a field.
export function showErrors(form, formError, problems) {
  let first = null;
  let placed = 0;
  const unplaced = [];
  for (const problem of problems) {
    const slot = slotFor(form, problem.field);
    if (!slot) { unplaced.push(problemText({ ...problem, field: problem.field || 'spec' })); continue; }
    const text = problemText(problem, { withField: false });
    slot.textContent = slot.textContent ? `${slot.textContent}; ${text}` : text;
    slot.closest('.field')?.classList.add('invalid');
    first ??= slot.closest('.field');
    placed += 1;
  }
  if (unplaced.length) { formError.textContent = unplaced.join('\n'); formError.hidden = false; first ??= formError; }
  first?.scrollIntoView({ block: 'center', behavior: 'instant' });
  first?.querySelector?.('input, select')?.focus({ preventScroll: true });
  return placed;
}
