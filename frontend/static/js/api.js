// Calls to the PruneLab API: JSON in and out, the bearer token of team servers, the loading indicator,
// and 401 / 403 turned into a token dialog and a clear banner instead of a broken page.
import { clearBanner, showBanner } from './ui.js';

const TOKEN_KEY = 'prunelab.token';

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
    this.errors = errorsOf(body);
  }
}

// ---------------------------------------------------------------- error bodies

// The problems an error answer lists, one per bad field: [{field, message, allowed, value}], `field` a dotted
// path like "schedule.rate" or null. Reads the API's structured body
//   {"detail": "<summary>", "errors": [{"field", "message", "allowed", "value"}]}
// and, until every route answers that way, FastAPI's own shapes: {"detail": "text"} and the 422's
// {"detail": [{"loc": ["body", ...], "msg": ...}]}.
export function errorsOf(body) {
  if (Array.isArray(body?.errors)) {
    return body.errors.map(e => ({ field: e.field || null, message: String(e.message ?? ''), allowed: e.allowed ?? null, value: e.value }));
  }
  const detail = body?.detail;
  if (Array.isArray(detail)) {
    return detail.map(d => ({
      field: (d.loc || []).map(String).filter(p => p !== 'body').join('.') || null,
      message: String(d.msg ?? ''), allowed: null, value: d.input,
    }));
  }
  if (typeof detail === 'string') return [{ field: null, message: detail, allowed: null, value: undefined }];
  return [];
}

// One problem as a line: "schedule.rate: must be below 1 (allowed: 0 < rate < 1)".
export function problemText({ field, message, allowed }, { withField = true } = {}) {
  const text = allowed && !message.includes(allowed) ? `${message} (allowed: ${allowed})` : message;
  return withField && field ? `${field}: ${text}` : text;
}

function detailText(body, fallback) {
  if (typeof body?.detail === 'string') return body.detail;
  const problems = errorsOf(body);
  return problems.length ? problems.map(p => problemText(p)).join('; ') : fallback;
}

// ---------------------------------------------------------------- loading indicator

let inflight = 0;
const loadingListeners = new Set();

export function onLoading(fn) { loadingListeners.add(fn); fn(inflight); }

function changeInflight(delta) {
  inflight += delta;
  for (const fn of loadingListeners) fn(inflight);
}

// Count any promise (a fetch, loading Plotly) towards the loading indicator.
export async function track(promise) {
  changeInflight(+1);
  try { return await promise; } finally { changeInflight(-1); }
}

// ---------------------------------------------------------------- token

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token); else localStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: the token lives for this page only */ }
  authListeners.forEach(fn => fn(token));
}

const authListeners = new Set();
export function onAuthChange(fn) { authListeners.add(fn); }

export function authHeaders() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

let tokenPrompt = null;     // the one open dialog that concurrent 401s share
let promptDeclined = false; // asked once and cancelled: do not ask again until the user clicks "Sign in"

export function askToken(reason, { force = false } = {}) {
  if (tokenPrompt) return tokenPrompt;
  if (promptDeclined && !force) return Promise.resolve(null);
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  document.getElementById('token-reason').textContent = reason || 'This server needs an API token.';
  input.value = '';
  tokenPrompt = new Promise(resolve => {
    dialog.addEventListener('close', () => {
      const token = dialog.returnValue === 'ok' ? input.value.trim() : '';
      tokenPrompt = null;
      if (token) { promptDeclined = false; setToken(token); resolve(token); } else { promptDeclined = true; resolve(null); }
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
  return tokenPrompt;
}

// ---------------------------------------------------------------- requests

async function send(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    return await track(fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) }));
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    showBanner('network', 'The PruneLab server is not reachable; retrying in the background.', 'warning');
    throw new ApiError(0, `network error: ${err.message}`);
  }
}

async function parseBody(res) {
  const type = res.headers.get('content-type') || '';
  if (res.status === 204) return null;
  return type.includes('json') ? res.json() : res.text();
}

export async function api(path, options = {}) {
  let res = await send(path, options);
  clearBanner('network');
  if (res.status === 401) {
    const body = await parseBody(res).catch(() => null);
    const reason = detailText(body, 'This server needs an API token.');
    if (getToken()) setToken('');  // given but refused: revoked or mistyped
    const token = await askToken(reason);
    if (token) res = await send(path, options);
    if (res.status === 401) {
      showBanner('auth', `401 Unauthorized: ${reason}`, 'error',
        { label: 'Sign in with a token', onclick: () => askToken(reason, { force: true }).then(t => t && location.reload()) });
      throw new ApiError(401, reason, body);
    }
  }
  const body = await parseBody(res).catch(() => null);
  if (res.status === 403) {
    const reason = detailText(body, 'your token does not allow this');
    showBanner('forbidden', `403 Forbidden: ${reason}`, 'error');
    throw new ApiError(403, reason, body);
  }
  if (!res.ok) throw new ApiError(res.status, detailText(body, `${res.status} ${res.statusText}`), body);
  clearBanner('auth');
  return body;
}

// A download that carries the token too (a plain link cannot send an Authorization header).
export async function download(path, filename) {
  const res = await send(path);
  if (!res.ok) {
    const body = await parseBody(res).catch(() => null);
    const reason = detailText(body, `${res.status} ${res.statusText}`);
    showBanner('download', `Download failed (${res.status}): ${reason}`);
    throw new ApiError(res.status, reason, body);
  }
  const blob = await track(res.blob());
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement('a'), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

let catalogPromise = null;
export function getCatalog() {
  catalogPromise ??= api('/api/catalog').catch(err => { catalogPromise = null; throw err; });
  return catalogPromise;
}

// ---------------------------------------------------------------- who is signed in

// {name, role, auth} from /api/me, asked once per token. A reader whose token was refused (and who declined
// to give another) counts as anonymous: the page still shows what it may read.
let mePromise = null;
const meListeners = new Set();

export function getMe() {
  mePromise ??= api('/api/me').catch(err => {
    if (err.name === 'AbortError' || err.status !== 401) { mePromise = null; throw err; }
    return { name: null, role: 'anonymous', auth: 'tokens' };
  });
  return mePromise;
}

// fn(me) now and whenever the token changes.
export function onMe(fn) {
  meListeners.add(fn);
  getMe().then(fn, () => {});
}

onAuthChange(() => {
  mePromise = null;
  getMe().then(me => meListeners.forEach(fn => fn(me)), () => {});
});

// What the server will allow (it checks again; this only spares the user buttons that would answer 403).
export function canWrite(me) {
  return me?.role === 'admin' || me?.role === 'user';
}

export function canModify(me, job) {
  return me?.role === 'admin' || (me?.role === 'user' && job.owner === me.name);
}

export function readOnlyReason(me) {
  if (me?.role === 'viewer') return `${me.name} is a viewer and may only read`;
  if (me?.role === 'anonymous') return 'reading without a token: sign in to start or change runs';
  return '';
}
