// Live updates. The server's event stream (/api/events, read with fetch so the token header goes along)
// delivers `job` and `step` events; while it is down, pages fall back to polling: a setTimeout chain (a poll
// never starts before the previous one ended) that slows down when nothing is running.
import { authHeaders } from './api.js';
import { POLL_FAST_MS, POLL_SLOW_MS, RECONNECT_MAX_MS, RECONNECT_MIN_MS } from './constants.js';

const handlers = new Set();
const stateListeners = new Set();
let state = 'connecting'; // connecting | live | polling
const forcedPolling = new URLSearchParams(location.search).get('live') === 'poll';

export function liveState() { return state; }
export function onLiveState(fn) { stateListeners.add(fn); fn(state); }
export function subscribe(fn) { handlers.add(fn); return () => handlers.delete(fn); }

let wasEverLive = false;

function setState(next) {
  if (next === state) return;
  state = next;
  stateListeners.forEach(fn => fn(state));
  // Back after a drop: events may have been missed meanwhile, so pages refresh once.
  if (next === 'live' && wasEverLive) dispatch({ type: 'reconnect' });
  if (next === 'live') wasEverLive = true;
}

function dispatch(event) {
  for (const fn of handlers) {
    try { fn(event); } catch (err) { console.error('live handler failed', err); }
  }
}

function parseEvent(chunk) {
  let type = 'message';
  const data = [];
  for (const line of chunk.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  try { return { type, data: JSON.parse(data.join('\n')) }; } catch { return null; }
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

async function readStream() {
  const res = await fetch('/api/events', { headers: { Accept: 'text/event-stream', ...authHeaders() } });
  if (!res.ok || !res.body) throw new Error(`event stream answered ${res.status}`);
  setState('live');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) dispatch(event);
    }
  }
}

export async function startLive() {
  if (forcedPolling) { setState('polling'); return; }
  let backoff = RECONNECT_MIN_MS;
  for (;;) {
    const opened = Date.now();
    try { await readStream(); } catch { /* server down or stream refused */ }
    setState('polling');
    if (Date.now() - opened > 30_000) backoff = RECONNECT_MIN_MS; // it was up for a while: try again soon
    await sleep(backoff);
    backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
  }
}

// Poll `refresh` (async, returns true while something it shows is queued or running) whenever the event
// stream is down. Never overlapping; 2 s while jobs run, doubling up to 30 s when nothing runs.
export function poller(refresh, { fast = POLL_FAST_MS, slow = POLL_SLOW_MS } = {}) {
  let delay = fast;
  let timer = null;
  let stopped = false;
  async function tick() {
    timer = null;
    if (stopped) return;
    if (state === 'polling') { // the stream is down (or turned off); while it connects, wait
      let active = true;
      try { active = await refresh(); } catch { active = false; }
      delay = active ? fast : Math.min(delay * 2, slow);
      if (document.hidden) delay = Math.max(delay, slow);
    } else {
      delay = fast; // live or connecting: nothing to poll; look again later in case the stream drops
    }
    if (!stopped) timer = setTimeout(tick, delay);
  }
  timer = setTimeout(tick, delay);
  return {
    stop() { stopped = true; if (timer) clearTimeout(timer); },
    // Something started: poll soon again (only reschedules a waiting timer, never runs two at once).
    hurry() { delay = fast; if (timer) { clearTimeout(timer); timer = setTimeout(tick, fast); } },
  };
}
