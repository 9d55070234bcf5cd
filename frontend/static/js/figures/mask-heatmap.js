// The mask heatmap of one layer at one step: a block keep grid (kept / pruned cells) or a density grid
// (share of weights kept per cell), rows = weight rows (outputs), columns = weight columns (inputs).
import { axis, baseLayout, emptyLayout } from '../charts.js';
import { pct } from '../format.js';

export const noMaskFigure = () => ({ data: [], layout: emptyLayout('') });

// mask: the /api/jobs/ID/layers/NAME/mask answer.
export function maskHeatmapFigure(mask, color) {
  const [cellRows, cellCols] = mask.cell;
  const rows = mask.values.length, cols = mask.values[0]?.length || 0;
  const blocks = mask.kind === 'blocks';
  const gap = blocks && cols <= 64 && rows <= 64 ? 1 : 0; // cell borders only where cells are big enough to see
  const data = [{
    type: 'heatmap', z: mask.values, zmin: 0, zmax: 1, xgap: gap, ygap: gap,
    x: Array.from({ length: cols }, (_, j) => j * cellCols),
    y: Array.from({ length: rows }, (_, i) => i * cellRows),
    colorscale: [[0, '#f1f5f9'], [1, color]], showscale: !blocks,
    colorbar: { title: { text: 'kept', side: 'right' }, thickness: 10, len: 0.9, tickformat: '.0%' },
    hovertemplate: blocks ? 'out %{y}, in %{x}: %{text}<extra></extra>' : 'out %{y}, in %{x}: %{z:.0%} kept<extra></extra>',
    text: blocks ? mask.values.map(r => r.map(v => (v ? 'kept' : 'pruned'))) : undefined,
  }];
  const layout = baseLayout({ margin: { l: 48, r: 12, t: 8, b: 40 },
    xaxis: axis('input (weight column)', { showgrid: false, zeroline: false }),
    yaxis: axis('output (weight row)', { autorange: 'reversed', showgrid: false, zeroline: false }) });
  return { data, layout };
}

// "step 3/8 · fc1 300×64 · 2×2 blocks · 48.8% pruned · accuracy 97.1%"
export function maskCaption(mask, { position, count, layer, accuracy }) {
  const shape = (mask.weight_shape || []).join('×');
  const cells = mask.kind === 'blocks' ? `${mask.cell.join('×')} blocks` : `${mask.cell.join('×')} weights per cell`;
  return `step ${position}/${count} · ${layer} ${shape} · ${cells} · ${pct(mask.sparsity)} pruned`
    + `${accuracy !== undefined ? ` · accuracy ${pct(accuracy)}` : ''}`;
}
