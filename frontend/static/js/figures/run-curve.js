// The run page's sparsity-accuracy curve: accuracy after fine-tuning (line), right after pruning (open
// markers) and the dense baseline (dashed), with a dotted line at the inspected step.
import { axis, baseLayout, centredNote } from '../charts.js';
import { latencyOf, pct, speedupText, tint } from '../format.js';

const hoverText = s => `step ${s.index + 1}: target ${pct(s.target_sparsity)}<br>sparsity ${pct(s.sparsity, 2)}<br>`
  + `after fine-tuning ${pct(s.accuracy, 2)}<br>right after pruning ${pct(s.accuracy_before_finetune, 2)}`
  + `${latencyOf(s)?.speedup ? `<br>speedup ${speedupText(latencyOf(s))}` : ''}`;

// steps: the stored steps; inspected: the step the page inspects, or null; emptyNote: shown with no steps.
export function runCurveFigure({ steps, baseline, inspected, color, emptyNote }) {
  const sorted = [...steps].sort((a, b) => a.sparsity - b.sparsity);
  const x = sorted.map(s => s.sparsity * 100);
  const hover = sorted.map(hoverText);
  const known = baseline !== undefined && baseline !== null;
  const data = [
    { name: 'after fine-tuning', x, y: sorted.map(s => s.accuracy * 100), customdata: sorted.map(s => s.index),
      mode: 'lines+markers', line: { color, width: 2.5 }, marker: { size: 8, color }, text: hover, hoverinfo: 'text' },
    { name: 'right after pruning', x, y: sorted.map(s => (s.accuracy_before_finetune ?? s.accuracy) * 100), customdata: sorted.map(s => s.index),
      mode: 'lines+markers', line: { color: tint(color, 0.45), width: 1, dash: 'dot' },
      marker: { size: 8, symbol: 'circle-open', color, line: { width: 1.5 } }, text: hover, hoverinfo: 'text' },
    { name: known ? `baseline ${pct(baseline, 2)}` : 'baseline (training…)', x: [0, 100],
      y: known ? [baseline * 100, baseline * 100] : [null, null],
      mode: 'lines', line: { color: '#475569', width: 1.5, dash: 'dash' }, hoverinfo: 'name' },
  ];
  const shapes = inspected ? [{ type: 'line', xref: 'x', yref: 'paper', x0: inspected.sparsity * 100, x1: inspected.sparsity * 100,
    y0: 0, y1: 1, line: { color: '#94a3b8', width: 1, dash: 'dot' } }] : [];
  const ys = data.flatMap(t => t.y).filter(v => v !== null && v !== undefined);
  const low = ys.length ? Math.max(0, Math.min(...ys) - 3) : 0;
  const layout = baseLayout({
    xaxis: axis('sparsity of the pruned layers (%)', { range: [-2, 102] }),
    yaxis: axis('test accuracy (%)', { range: [low, Math.min(100.5, (ys.length ? Math.max(...ys) : 100) + 2)] }),
    shapes,
    annotations: steps.length ? [] : [centredNote(emptyNote)],
  });
  return { data, layout };
}
