// #/compare?ids=1,2&x=sparsity: the curves of several runs overlaid (accuracy vs sparsity, FLOPs, latency or
// size), the Pareto front over all of them, and a table of key figures. Everything is in the URL, so a link
// reopens the same comparison. The server downsamples long histories (/api/compare?points=...).
import { api, ApiError } from '../api.js';
import { axis, baseLayout, draw, loadPlotly, purge } from '../charts.js';
import { poller, subscribe } from '../live.js';
import { replaceQuery } from '../route.js';
import { loadSelection } from './runs.js';
import { bytes, clear, fill, dash, errorBox, h, METHOD_NAMES, methodChip, methodColor, ms, pct, si, signedPts, statusBadge, times } from '../ui.js';

const POINTS = 200;
const LEGEND_LIMIT = 12; // more runs than this: one legend entry per method
const DASHES = ['solid', 'dash', 'dot', 'dashdot', 'longdash', 'longdashdot'];
const SYMBOLS = ['circle', 'square', 'diamond', 'triangle-up', 'x', 'star', 'triangle-down', 'pentagon'];

// What the x axis shows; `better` says which way the Pareto front points.
const X_AXES = {
  sparsity: { label: 'sparsity of the pruned layers (%)', better: 'higher', value: p => (p.sparsity ?? null) === null ? null : p.sparsity * 100, dense: () => 0, type: 'linear', fmt: v => `${v.toFixed(1)}%` },
  flops: { label: 'FLOPs per sample (effective, log)', better: 'lower', value: p => p.flops_effective ?? null, dense: p => p.flops_dense ?? null, type: 'log', fmt: v => si(v) },
  latency: { label: 'measured latency (ms, log)', better: 'lower', value: p => p.latency_ms ?? null, dense: p => p.dense_latency_ms ?? null, type: 'log', fmt: v => ms(v) },
  size: { label: 'model size (bytes, sparse storage, log)', better: 'lower', value: p => p.size_sparse_bytes ?? null, dense: p => p.size_dense_bytes ?? null, type: 'log', fmt: v => bytes(v) },
};
const Y_AXES = {
  after: { label: 'test accuracy after fine-tuning (%)', value: p => p.accuracy },
  before: { label: 'test accuracy right after pruning (%)', value: p => p.accuracy_before_finetune ?? p.accuracy },
};

export function paretoFront(points, better) {
  // points: [{x, y, ...}]; maximise y, and x in the direction `better`. Returns the front sorted by x.
  const valid = points.filter(p => Number.isFinite(p.x) && Number.isFinite(p.y));
  valid.sort((a, b) => (better === 'higher' ? b.x - a.x : a.x - b.x) || b.y - a.y);
  const front = [];
  let bestY = -Infinity;
  for (const p of valid) if (p.y > bestY) { front.push(p); bestY = p.y; }
  return front.sort((a, b) => a.x - b.x);
}

function parseIds(text) {
  return [...new Set(String(text || '').split(',').map(s => Number(s.trim())).filter(n => Number.isInteger(n) && n > 0))];
}

export async function render(root, params, { signal }) {
  loadPlotly().catch(() => {}); // in parallel with the data
  const query = new URLSearchParams(params);
  let ids = parseIds(query.get('ids'));
  let xKey = X_AXES[query.get('x')] ? query.get('x') : 'sparsity';
  let yKey = Y_AXES[query.get('y')] ? query.get('y') : 'after';
  let showFront = query.get('front') !== '0';
  let runs = [];

  const chartEl = h('div', { id: 'compare-chart', class: 'chart chart-tall' });
  const tableBox = h('div', { class: 'table-box', id: 'compare-table-box' });
  const chips = h('div', { class: 'run-chips', id: 'compare-runs' });
  const picker = h('select', { id: 'add-run', 'aria-label': 'add a run' }, h('option', { value: '' }, '+ add a run…'));
  const note = h('span', { class: 'small muted', id: 'compare-note' });

  const goTo = nextIds => { location.hash = `#/compare?${new URLSearchParams({ ...Object.fromEntries(query), ids: nextIds.join(',') }).toString().replace(/%2C/g, ',')}`; };
  picker.addEventListener('change', () => { const id = Number(picker.value); if (id && !ids.includes(id)) goTo([...ids, id]); });

  function segmented(name, options, current, onChange) {
    return h('div', { class: 'segmented', role: 'group', 'aria-label': name },
      Object.entries(options).map(([key, text]) => h('button', { type: 'button', 'data-value': key, class: key === current ? 'active' : '',
        onclick: event => {
          event.currentTarget.parentElement.querySelectorAll('button').forEach(b => b.classList.toggle('active', b === event.currentTarget));
          onChange(key);
        } }, text)));
  }

  const copyButton = h('button', { type: 'button', class: 'secondary', id: 'copy-link', onclick: async () => {
    try { await navigator.clipboard.writeText(location.href); copyButton.textContent = 'Link copied'; } catch { prompt('Link to this comparison', location.href); }
    setTimeout(() => { copyButton.textContent = 'Copy link'; }, 1500);
  } }, 'Copy link');

  root.append(
    h('section', { class: 'page-head' }, h('h1', {}, 'Compare runs'), note, h('div', { class: 'spacer' }), copyButton),
    h('section', { class: 'toolbar' },
      h('span', { class: 'small muted' }, 'x axis'),
      segmented('x axis', { sparsity: 'Sparsity', flops: 'FLOPs', latency: 'Latency', size: 'Size' }, xKey, key => { xKey = key; query.set('x', key); replaceQuery(query); drawChart(); }),
      h('span', { class: 'small muted' }, 'accuracy'),
      segmented('accuracy', { after: 'after fine-tuning', before: 'right after pruning' }, yKey, key => { yKey = key; query.set('y', key); replaceQuery(query); drawChart(); drawTable(); }),
      h('label', { class: 'check-inline' }, h('input', { type: 'checkbox', id: 'show-front', checked: showFront, onchange: e => {
        showFront = e.target.checked; if (showFront) query.delete('front'); else query.set('front', '0'); replaceQuery(query); drawChart();
      } }), 'Pareto front')),
    chips,
    h('section', { class: 'card chart-card' }, chartEl),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Key figures'),
      h('span', { class: 'small muted' }, 'from the downsampled curves; "≤1 pt" = the highest sparsity within 1 point of the baseline')), tableBox));

  // ------------------------------------------------------------ empty state

  if (!ids.length) {
    const selection = [...loadSelection()].sort((a, b) => a - b);
    chartEl.replaceWith(h('div', { class: 'empty' },
      selection.length ? h('span', {}, `You selected ${selection.length} run${selection.length === 1 ? '' : 's'} in the list: `,
        h('a', { href: `#/compare?ids=${selection.join(',')}`, id: 'compare-selection' }, 'compare them'), '.')
        : h('span', {}, 'Tick runs in the ', h('a', { href: '#/runs' }, 'run list'), ' and press "Compare selected", or add runs here.')));
    chips.append(picker);
    fillPicker();
    return null;
  }

  // ------------------------------------------------------------ chart

  function styleOf(run, i, indexInMethod) {
    const c = methodColor(run.job.method);
    return { color: c, dash: DASHES[indexInMethod % DASHES.length], symbol: SYMBOLS[indexInMethod % SYMBOLS.length] };
  }

  function runPoints(run) {
    const X = X_AXES[xKey], Y = Y_AXES[yKey];
    const ordered = [...run.points].sort((a, b) => (a.sparsity ?? 0) - (b.sparsity ?? 0));
    const pts = ordered.map(p => ({ x: X.value(p), y: (Y.value(p) ?? null) === null ? null : Y.value(p) * 100, step: p.index, p }));
    const base = run.job.baseline?.accuracy ?? run.job.summary?.baseline_accuracy;
    const first = run.points[0];
    const denseX = first ? X.dense(first) : xKey === 'sparsity' ? 0 : null;
    if (base !== null && base !== undefined && denseX !== null && denseX !== undefined) pts.unshift({ x: denseX, y: base * 100, step: null, p: null });
    return pts.filter(p => p.x !== null && p.y !== null);
  }

  function drawChart() {
    const X = X_AXES[xKey];
    const perMethod = new Map();
    const manyRuns = runs.length > LEGEND_LIMIT;
    const seenMethods = new Set();
    const all = [];
    const traces = runs.map((run, i) => {
      const kind = run.job.method;
      const k = perMethod.get(kind) || 0;
      perMethod.set(kind, k + 1);
      const style = styleOf(run, i, k);
      const pts = runPoints(run); // dense first, then by sparsity: the line follows the pruning trajectory
      pts.forEach(p => all.push({ ...p, run }));
      const firstOfMethod = !seenMethods.has(kind);
      seenMethods.add(kind);
      return {
        type: 'scatter', mode: 'lines+markers',
        name: manyRuns ? (METHOD_NAMES[kind] || kind) : `#${run.job.id} ${run.job.name}`,
        legendgroup: manyRuns ? kind : undefined, showlegend: manyRuns ? firstOfMethod : true,
        x: pts.map(p => p.x), y: pts.map(p => p.y),
        line: { color: style.color, dash: manyRuns ? 'solid' : style.dash, width: manyRuns ? 1.2 : 2 },
        marker: { color: style.color, symbol: style.symbol, size: manyRuns ? 5 : 7 },
        opacity: manyRuns ? 0.75 : 1,
        text: pts.map(p => `#${run.job.id} ${run.job.name} (${METHOD_NAMES[kind] || kind})<br>${p.step === null ? 'dense baseline' : `step ${p.step + 1}`}`
          + `<br>${X.fmt(p.x)} → ${p.y.toFixed(2)}%`),
        hoverinfo: 'text',
        meta: { jobId: run.job.id },
      };
    });
    if (showFront) {
      const front = paretoFront(all, X.better);
      traces.push({
        type: 'scatter', mode: 'lines+markers', name: 'Pareto front', x: front.map(p => p.x), y: front.map(p => p.y),
        line: { color: '#0f172a', width: 2.5, shape: X.better === 'higher' ? 'vh' : 'hv' },
        marker: { size: 13, symbol: 'circle-open', color: '#0f172a', line: { width: 2 } },
        text: front.map(p => `Pareto: #${p.run.job.id} ${p.run.job.name}<br>${p.step === null ? 'dense baseline' : `step ${p.step + 1}`} · ${X.fmt(p.x)} → ${p.y.toFixed(2)}%`),
        hoverinfo: 'text',
      });
    }
    const ys = all.map(p => p.y);
    const layout = baseLayout({
      margin: { l: 60, r: 16, t: 12, b: 48 },
      xaxis: axis(X.label, { type: X.type, ...(xKey === 'sparsity' ? { range: [-2, 102] } : {}) }),
      yaxis: axis(Y_AXES[yKey].label, ys.length ? { range: [Math.max(0, Math.min(...ys) - 2), Math.min(100.5, Math.max(...ys) + 1.5)] } : {}),
      legend: { orientation: 'v', x: 1.01, y: 1, xanchor: 'left', font: { size: 11 } },
    });
    return draw(chartEl, traces, layout);
  }

  // ------------------------------------------------------------ table

  function figures(run) {
    const Y = Y_AXES[yKey];
    const base = run.job.baseline?.accuracy ?? run.job.summary?.baseline_accuracy ?? null;
    const points = run.points;
    const last = points[points.length - 1];
    const within = base === null ? [] : points.filter(p => (Y.value(p) ?? -1) >= base - 0.01);
    const best = points.reduce((m, p) => Math.max(m, Y.value(p) ?? -Infinity), -Infinity);
    return {
      base, last, best: Number.isFinite(best) ? best : null,
      withinOne: within.length ? Math.max(...within.map(p => p.sparsity)) : null,
      flopsFewer: last?.flops_effective ? last.flops_dense / last.flops_effective : null,
      sizeSmaller: last?.size_sparse_bytes ? last.size_dense_bytes / last.size_sparse_bytes : null,
    };
  }

  function drawTable() {
    const rows = runs.map(run => ({ run, f: figures(run) })).sort((a, b) => (b.f.best ?? -1) - (a.f.best ?? -1));
    const Y = Y_AXES[yKey];
    fill(tableBox, h('table', { class: 'compare', id: 'compare-table' },
      h('thead', {}, h('tr', {}, [['run'], ['status'], ['model'], ['method'], ['steps', 'pruning steps stored'], ['baseline', 'dense accuracy'],
        ['sparsity', 'sparsity of the last step'], ['accuracy', 'accuracy of the last step'], ['Δ pts', 'last accuracy minus baseline, in points'],
        ['best', 'best accuracy over the steps'], ['≤1 pt', 'highest sparsity within 1 point of the baseline'],
        ['FLOPs ÷', 'dense FLOPs / effective FLOPs, last step'], ['size ÷', 'dense size / sparse size, last step'], ['speedup', 'measured latency speedup, last step'], ['']]
        .map(([t, title]) => h('th', { title }, t)))),
      h('tbody', {}, rows.map(({ run, f }) => {
        const job = run.job;
        const finalAcc = f.last ? Y.value(f.last) : null;
        return h('tr', { 'data-job-id': job.id },
          h('td', { class: 'name-cell', title: job.name }, h('span', { class: 'swatch-inline', style: { '--method': methodColor(job.method) } }), h('a', { href: `#/run/${job.id}` }, `#${job.id} ${job.name}`)),
          h('td', {}, statusBadge(job.status)),
          h('td', {}, job.model, h('div', { class: 'small muted' }, job.dataset)),
          h('td', {}, methodChip(job.method), h('div', { class: 'small muted' }, job.schedule)),
          h('td', { class: 'num' }, run.total_points ?? run.points.length),
          h('td', { class: 'num' }, pct(f.base)),
          h('td', { class: 'num' }, pct(f.last?.sparsity)),
          h('td', { class: 'num' }, pct(finalAcc)),
          h('td', { class: 'num' }, finalAcc !== null && finalAcc !== undefined && f.base !== null ? signedPts(finalAcc - f.base).replace(' pts', '') : dash),
          h('td', { class: 'num' }, pct(f.best)),
          h('td', { class: 'num' }, pct(f.withinOne)),
          h('td', { class: 'num' }, f.flopsFewer ? times(f.flopsFewer) : dash),
          h('td', { class: 'num' }, f.sizeSmaller ? times(f.sizeSmaller) : dash),
          h('td', { class: 'num' }, times(f.last?.speedup)),
          h('td', {}, h('button', { type: 'button', class: 'link-button', title: 'remove from the comparison', onclick: () => goTo(ids.filter(i => i !== job.id)) }, '×')));
      }))));
  }

  function drawChips() {
    const perMethod = new Map();
    fill(chips, runs.map((run, i) => {
      const k = perMethod.get(run.job.method) || 0;
      perMethod.set(run.job.method, k + 1);
      const style = styleOf(run, i, k);
      return runs.length > 30 ? null : h('span', { class: 'run-chip', style: { '--method': style.color } },
        h('span', { class: 'swatch' }), h('a', { href: `#/run/${run.job.id}` }, `#${run.job.id} ${run.job.name}`),
        h('button', { type: 'button', class: 'chip-remove', title: 'remove', onclick: () => goTo(ids.filter(id => id !== run.job.id)) }, '×'));
    }), runs.length > 30 ? h('span', { class: 'small muted' }, `${runs.length} runs (the table lists them all)`) : null, picker);
  }

  async function fillPicker() {
    try {
      const data = await api('/api/jobs?limit=100&sort=-created_at', { signal });
      const options = data.items.filter(j => !ids.includes(j.id));
      picker.append(...options.map(j => h('option', { value: j.id },
        `#${j.id} ${j.name} · ${METHOD_NAMES[j.method] || j.method} · ${j.status}${j.summary?.sparsity ? ` · ${pct(j.summary.sparsity)}` : ''}`)));
    } catch { /* the picker just stays empty */ }
  }

  // ------------------------------------------------------------ data

  async function load() {
    try {
      const data = await api(`/api/compare?ids=${ids.join(',')}&points=${POINTS}`, { signal });
      runs = data.runs;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        // Some runs were deleted: say which, and compare the rest.
        const missing = parseIds((err.message.match(/[\d, ]+$/) || [''])[0]);
        if (missing.length && missing.length < ids.length) { goTo(ids.filter(i => !missing.includes(i))); return false; }
      }
      throw err;
    }
    note.textContent = `${runs.length} run${runs.length === 1 ? '' : 's'} · up to ${POINTS} points each`;
    drawChips();
    drawTable();
    await drawChart();
    return runs.some(r => r.job.status === 'queued' || r.job.status === 'running');
  }

  let reloadTimer = null;
  const unsubscribe = subscribe(event => {
    const id = event.type === 'step' ? event.data.job_id : event.type === 'job' ? event.data.id : null;
    if (event.type === 'reconnect' || (event.type === 'step' && ids.includes(id))) {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(() => load().catch(() => {}), 1000);
    }
  });
  const poll = poller(() => load());

  try {
    await load();
  } catch (err) {
    if (err.name === 'AbortError') return null;
    chartEl.replaceWith(errorBox(err));
  }
  fillPicker();
  return () => { unsubscribe(); poll.stop(); clearTimeout(reloadTimer); purge(chartEl); };
}
