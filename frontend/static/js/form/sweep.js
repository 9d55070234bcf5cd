// The New run form's Sweep section: rows of "spec path = list of values" (method.block_size = 2, 3, 4, 5, 6;
// seed = 0, 1, 2). With at least one row the form submits a group of jobs, one per combination (POST
// /api/groups). Values are read strictly, never coerced: a text that is not a value is an error next to its row.
import { h } from '../ui.js';
import { FieldError } from './fields.js';

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const WORD = /^[A-Za-z_][\w.:-]*$/;
const PATH = /^[A-Za-z_]\w*(\.[A-Za-z_][\w.-]*)*$/;

// Split at the commas outside brackets and quotes: "2, [2, 4], 'a,b'" -> ["2", "[2, 4]", "'a,b'"].
function splitTop(text) {
  const parts = [];
  let depth = 0, quote = null, start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) { if (c === quote) quote = null; continue; }
    if (c === '"' || c === "'") quote = c;
    else if (c === '[') depth += 1;
    else if (c === ']') depth -= 1;
    else if ((c === ',' || c === ';') && depth === 0) { parts.push(text.slice(start, i)); start = i + 1; }
    if (depth < 0) throw new FieldError(`"${text}": a "]" closes no "["`);
  }
  if (quote) throw new FieldError(`"${text}": a quote is not closed`);
  if (depth !== 0) throw new FieldError(`"${text}": a "[" is not closed`);
  parts.push(text.slice(start));
  return parts.map(p => p.trim());
}

function value(text, i) {
  if (text === '') throw new FieldError(`value ${i + 1} is empty`);
  if (INT.test(text) || FLOAT.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  if (text === 'null') return null;
  const quoted = text.match(/^(["'])(.*)\1$/);
  if (quoted) return quoted[2];
  if (text.startsWith('[')) {
    const inner = text.slice(1, -1).trim();
    return inner === '' ? [] : splitTop(inner).map((x, j) => {
      const v = value(x, j);
      if (typeof v !== 'number') throw new FieldError(`value ${i + 1}, "${text}": a list holds numbers, e.g. [2, 4]`);
      return v;
    });
  }
  if (WORD.test(text)) return text; // a choice such as l1 or cosine
  throw new FieldError(`value ${i + 1}, "${text}", is not a number, true/false, a word, "text" or [a, b]`);
}

// "2, 3, [2, 4], l1" -> [2, 3, [2, 4], "l1"]; FieldError naming the bad item.
export function parseValues(text) {
  const raw = String(text).trim();
  if (raw === '') throw new FieldError('give the values to sweep, comma separated, e.g. 2, 3, 4');
  const inner = raw.startsWith('[') && raw.endsWith(']') && !raw.slice(1).includes('[') ? raw.slice(1, -1) : raw;
  const values = splitTop(inner).map(value);
  const seen = values.map(v => JSON.stringify(v));
  const twice = seen.findIndex((s, i) => seen.indexOf(s) !== i);
  if (twice >= 0) throw new FieldError(`the value ${seen[twice]} is listed twice`);
  return values;
}

const shown = v => (Array.isArray(v) ? `[${v.join(', ')}]` : typeof v === 'string' && !WORD.test(v) ? JSON.stringify(v) : String(v));

// onChange(): a row was typed in, added or removed. Returns {el, read, set}.
export function sweepSection({ onChange, paths = [] }) {
  const rows = h('div', { class: 'sweep-rows', id: 'sweep-rows' });
  const list = h('datalist', { id: 'sweep-paths' }, paths.map(p => h('option', { value: p })));
  const countNote = h('div', { class: 'hint', id: 'sweep-count' });

  function addRow(path = '', values = '') {
    const slot = h('div', { class: 'field-error', role: 'alert', 'data-error-for': path ? `sweep.${path}` : 'sweep.new' });
    const pathInput = h('input', { type: 'text', class: 'sweep-path', value: path, placeholder: 'method.block_size', list: 'sweep-paths',
      'aria-label': 'spec field to sweep', spellcheck: false, autocomplete: 'off' });
    const valuesInput = h('input', { type: 'text', class: 'sweep-values', value: values, placeholder: '2, 3, 4, 5, 6',
      'aria-label': 'values to sweep', spellcheck: false, autocomplete: 'off' });
    const row = h('div', { class: 'field wide sweep-row', 'data-field': 'sweep-row' },
      h('div', { class: 'sweep-inputs' }, pathInput, h('span', { class: 'muted' }, '='), valuesInput,
        h('button', { type: 'button', class: 'link-button', title: 'remove this row', onclick: () => { row.remove(); onChange(); } }, '×')),
      slot);
    pathInput.addEventListener('input', () => { slot.dataset.errorFor = pathInput.value.trim() ? `sweep.${pathInput.value.trim()}` : 'sweep.new'; });
    rows.append(row);
    return row;
  }

  // {sweep: {path: [values]} or null, problems: [{field, message}], count: jobs it makes}
  function read() {
    const sweep = {};
    const problems = [];
    for (const row of rows.querySelectorAll('.sweep-row')) {
      const path = row.querySelector('.sweep-path').value.trim();
      const text = row.querySelector('.sweep-values').value.trim();
      const field = path ? `sweep.${path}` : 'sweep.new';
      if (!path && !text) continue;
      if (!PATH.test(path)) { problems.push({ field, message: path ? `"${path}" is not a dotted spec path like method.block_size` : 'name the spec field to sweep, e.g. seed', allowed: null }); continue; }
      if (path in sweep) { problems.push({ field, message: `${path} is swept twice`, allowed: null }); continue; }
      try { sweep[path] = parseValues(text); } catch (err) {
        if (!(err instanceof FieldError)) throw err;
        problems.push({ field, message: err.message, allowed: null });
      }
    }
    const count = Object.values(sweep).reduce((n, v) => n * v.length, 1);
    const any = Object.keys(sweep).length > 0;
    countNote.textContent = any ? `${count} runs, one per combination, submitted as one group` : 'no sweep: one run';
    return { sweep: any ? sweep : null, problems, count: any ? count : 1 };
  }

  function set(sweep) {
    rows.replaceChildren();
    for (const [path, values] of Object.entries(sweep || {})) addRow(path, values.map(shown).join(', '));
    read();
  }

  const el = h('div', { class: 'fields sweep-section' },
    h('div', { class: 'hint wide' }, 'Run every combination of the values: one run per combination, as one group the compare page opens whole '
      + '(runs that differ only in seed are drawn as their mean ± std).'),
    rows, list,
    h('div', { class: 'field wide' }, h('button', { type: 'button', class: 'secondary small-button', id: 'add-sweep-row', onclick: () => { addRow(); onChange(); } }, '+ sweep a field'),
      countNote, h('div', { class: 'field-error', role: 'alert', 'data-error-for': 'sweep' })));
  read();
  return { el, read, set };
}
