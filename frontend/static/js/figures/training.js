// The run page's training curves: validation accuracy (left axis) and training loss (right axis) per epoch,
// for the baseline's training and for the fine-tuning of the inspected step (each a list of
// {epoch, loss, val_accuracy}; epoch 0 is the starting weights, which have no training loss).
import { axis, baseLayout, centredNote } from '../charts.js';
import { pct, tint } from '../format.js';

const finite = v => typeof v === 'number' && Number.isFinite(v);

function curves(history, name, color, dash) {
  const acc = history.filter(h => finite(h.val_accuracy));
  const loss = history.filter(h => finite(h.loss));
  return [
    { name: `${name}: validation accuracy`, x: acc.map(h => h.epoch), y: acc.map(h => h.val_accuracy * 100),
      mode: 'lines+markers', line: { color, width: 2, dash }, marker: { size: 6, color },
      text: acc.map(h => `${name}, epoch ${h.epoch}: validation accuracy ${pct(h.val_accuracy, 2)}`), hoverinfo: 'text',
      meta: { history: name, kind: 'accuracy' } },
    { name: `${name}: training loss`, x: loss.map(h => h.epoch), y: loss.map(h => h.loss), yaxis: 'y2',
      mode: 'lines', line: { color: tint(color, 0.5), width: 1.5, dash: 'dot' },
      text: loss.map(h => `${name}, epoch ${h.epoch}: training loss ${h.loss.toFixed(4)}`), hoverinfo: 'text',
      meta: { history: name, kind: 'loss' } },
  ];
}

// baseline: the baseline's history (or null); step: the inspected step (its `history`, or null).
export function trainingFigure({ baseline, step, color }) {
  const data = [];
  if (baseline?.length) data.push(...curves(baseline, 'baseline', '#475569', 'solid'));
  if (step?.history?.length) data.push(...curves(step.history, `step ${step.index + 1} fine-tuning`, color, 'solid'));
  const note = data.length ? null
    : step ? `step ${step.index + 1} ran no fine-tuning, and no baseline curve is stored` : 'no training curve stored yet';
  const layout = baseLayout({
    margin: { l: 56, r: 56, t: 12, b: 44 },
    xaxis: axis('epoch', { dtick: 1, rangemode: 'tozero' }),
    yaxis: axis('validation accuracy (%)'),
    yaxis2: axis('training loss', { overlaying: 'y', side: 'right', showgrid: false, rangemode: 'tozero' }),
    annotations: note ? [centredNote(note)] : [],
  });
  return { data, layout };
}
