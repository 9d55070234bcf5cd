// The router (hash routes: #/runs, #/run/12, #/compare?ids=1,2, #/new, #/workers) and the top bar.
import { askToken, canWrite, getMe, getToken, onAuthChange, onLoading, onMe, readOnlyReason, setToken } from './api.js';
import { onLiveState, startLive } from './live.js';
import { loadPlotly } from './charts.js';
import { parseHash } from './route.js';
import { clear, clearBanner, errorBox, h } from './ui.js';
import * as runsPage from './pages/runs.js';
import * as runPage from './pages/run.js';
import * as newPage from './pages/new.js';
import * as comparePage from './pages/compare.js';
import * as workersPage from './pages/workers.js';
import * as sensitivityPage from './pages/sensitivity.js';

const routes = [
  { pattern: /^\/?$/, page: runsPage, nav: 'runs' },
  { pattern: /^\/runs$/, page: runsPage, nav: 'runs' },
  { pattern: /^\/run\/(\d+)$/, page: runPage, nav: 'runs', param: 'id' },
  { pattern: /^\/sensitivity\/(\d+)$/, page: sensitivityPage, nav: 'runs', param: 'id' },
  { pattern: /^\/new$/, page: newPage, nav: 'new' },
  { pattern: /^\/compare$/, page: comparePage, nav: 'compare' },
  { pattern: /^\/workers$/, page: workersPage, nav: 'workers' },
];

let current = null; // { dispose, controller }

async function render() {
  const { path, query } = parseHash();
  if (current) {
    current.controller.abort();
    try { current.dispose?.(); } catch (err) { console.error(err); }
    current = null;
  }
  clearBanner('forbidden');
  clearBanner('download');
  const root = clear(document.getElementById('app'));
  const route = routes.find(r => r.pattern.test(path));
  document.querySelectorAll('[data-nav]').forEach(a => a.classList.toggle('active', a.dataset.nav === route?.nav));
  if (!route) {
    root.append(h('section', { class: 'panel' }, h('h1', {}, 'Not found'), h('p', {}, `No page at #${path}. `, h('a', { href: '#/runs' }, 'Back to the runs'))));
    return;
  }
  document.title = `${{ runs: 'Runs', new: 'New run', compare: 'Compare', workers: 'Workers' }[route.nav]} · PruneLab`;
  const params = Object.fromEntries(query);
  if (route.param) params[route.param] = Number(path.match(route.pattern)[1]);
  const controller = new AbortController();
  current = { controller, dispose: null };
  try {
    const dispose = await route.page.render(root, params, { signal: controller.signal });
    if (controller.signal.aborted) dispose?.(); else current.dispose = dispose;
  } catch (err) {
    if (err.name === 'AbortError' || controller.signal.aborted) return;
    console.error(err);
    root.append(errorBox(err));
  }
}

function setupTopbar() {
  const loading = document.getElementById('loading');
  const bar = document.getElementById('loading-bar');
  onLoading(n => { loading.hidden = n === 0; bar.classList.toggle('active', n > 0); document.body.dataset.loading = n; });

  const live = document.getElementById('live-state');
  const labels = { live: 'live', polling: 'polling', connecting: 'connecting' };
  const titles = {
    live: 'Updates arrive as they happen (server-sent events)',
    polling: 'The event stream is not available: polling, slower when nothing runs',
    connecting: 'Connecting to the event stream',
  };
  onLiveState(state => { live.textContent = labels[state]; live.dataset.state = state; live.title = titles[state]; });

  const authButton = document.getElementById('auth-button');
  const showAuth = () => {
    authButton.textContent = getToken() ? 'Sign out' : 'Sign in';
    authButton.title = getToken() ? 'Forget the API token kept in this browser' : 'Give an API token (team servers)';
  };
  authButton.addEventListener('click', async () => {
    if (getToken()) { setToken(''); location.reload(); return; }
    if (await askToken('Give your API token.', { force: true })) location.reload();
  });
  onAuthChange(showAuth);
  showAuth();

  // Who is signed in, beside the button; both only matter on team servers. Readers cannot start runs.
  const whoami = document.getElementById('whoami');
  const newRunLink = document.querySelector('[data-nav=new]');
  onMe(me => {
    const team = me.auth !== 'off';
    authButton.hidden = !team;
    whoami.hidden = !team;
    whoami.dataset.role = me.role;
    whoami.textContent = me.name ? `${me.name} · ${me.role}` : 'not signed in';
    whoami.title = me.name ? `signed in as ${me.name} (${me.role})` : readOnlyReason(me);
    newRunLink.hidden = !canWrite(me);
  });
  getMe().catch(() => { authButton.hidden = false; });  // server not answering: signing in may still help
}

setupTopbar();
window.addEventListener('hashchange', render);
render().then(() => {
  // Plotly.js is big (4.8 MB): fetch and parse it while the user reads the first page, so the next one is quick.
  const idle = window.requestIdleCallback || (fn => setTimeout(fn, 300));
  idle(() => loadPlotly({ quiet: true }).catch(() => {}));
});
startLive();
