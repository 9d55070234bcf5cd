// The mask heatmap of one layer at one step: a block keep grid (kept / pruned cells) or a density grid
// (share of weights kept per cell), rows = weight rows (outputs), columns = weight columns (inputs; for a
// conv layer in·kh·kw, as it is pruned). Cells are laid out in weight units with equal aspect, so a 2×4 block
// looks twice as wide as tall; zoom with the wheel or a drag, pan from the mode bar, double-click resets.
import { axis, baseLayout, emptyLayout } from '../charts.js';
import { pct } from '../format.js';

export const noMaskFigure = () => ({ data: [], layout: emptyLayout('') });

const isConv = mask => (mask.weight_shape || []).length > 2;

// What one cell of the grid is, in the words of the method that made the mask.
export function cellText(mask, method) {
  const [r, c] = mask.cell;
  const cols = (mask.weight_shape || []).slice(1).reduce((a, b) => a * b, 1);
  if (mask.kind === 'density') return `${r}×${c} weights per cell (share kept)`;
  if (r === 1 && c === 1) return 'per weight (fine-grained)';
  if (method === 'channel' || method === 'group_lasso' || (r === 1 && c === cols)) return isConv(mask) ? 'whole filters' : 'whole output rows';
  return `${r}×${c} blocks`;
}

// mask: the /api/jobs/ID/layers/NAME/mask answer; method: the run's method kind.
export function maskHeatmapFigure(mask, color, method) {
  const [cellRows, cellCols] = mask.cell;
  const rows = mask.values.length, cols = mask.values[0]?.length || 0;
  const blocks = mask.kind === 'blocks';
  const gap = blocks && cols <= 64 && rows <= 64 ? 1 : 0; // cell borders only where cells are big enough to see
  const legend = blocks
    ? { colorscale: [[0, '#e2e8f0'], [0.5, '#e2e8f0'], [0.5, color], [1, color]],
      colorbar: { tickvals: [0.25, 0.75], ticktext: ['pruned', 'kept'], thickness: 12, len: 0.35, y: 1, yanchor: 'top', outlinewidth: 0 } }
    : { colorscale: [[0, '#f1f5f9'], [1, color]],
      colorbar: { title: { text: 'share kept', side: 'right' }, thickness: 10, len: 0.9, tickformat: '.0%', outlinewidth: 0 } };
  const unit = cellText(mask, method);
  const data = [{
    type: 'heatmap', z: mask.values, zmin: 0, zmax: 1, xgap: gap, ygap: gap, showscale: true, ...legend,
    // Cell centres in weight units: cell j spans columns j*c .. (j+1)*c - 1.
    x: Array.from({ length: cols }, (_, j) => (j + 0.5) * cellCols - 0.5),
    y: Array.from({ length: rows }, (_, i) => (i + 0.5) * cellRows - 0.5),
    customdata: mask.values.map((r, i) => r.map((_, j) => [i * cellRows, j * cellCols])),
    hovertemplate: blocks ? `out %{customdata[0]}, in %{customdata[1]}: %{text}<extra>${unit}</extra>`
      : `out %{customdata[0]}, in %{customdata[1]}: %{z:.0%} kept<extra>${unit}</extra>`,
    text: blocks ? mask.values.map(r => r.map(v => (v ? 'kept' : 'pruned'))) : undefined,
  }];
  const conv = isConv(mask);
  const layout = baseLayout({ margin: { l: 52, r: 12, t: 8, b: 40 }, dragmode: 'zoom',
    uirevision: `${mask.layer}`, // the zoom stays while the slider moves through the steps
    xaxis: axis(conv ? 'input (in channel × kernel position)' : 'input (weight column)',
      { showgrid: false, zeroline: false, constrain: 'domain', range: [-0.5, cols * cellCols - 0.5] }),
    yaxis: axis(conv ? 'output channel (filter)' : 'output (weight row)',
      { showgrid: false, zeroline: false, scaleanchor: 'x', scaleratio: 1, constrain: 'domain', range: [rows * cellRows - 0.5, -0.5] }) });
  return { data, layout };
}

export const HEATMAP_CONFIG = { scrollZoom: true, modeBarButtonsToRemove: ['lasso2d', 'select2d'] };

// "step 3/8 · fc1 300×64 · 2×2 blocks · 48.8% pruned · accuracy 97.1%"
export function maskCaption(mask, { position, count, layer, accuracy, method }) {
  const shape = (mask.weight_shape || []).join('×');
  return `step ${position}/${count} · ${layer} ${shape} · ${cellText(mask, method)} · ${pct(mask.sparsity)} pruned`
    + `${accuracy !== undefined ? ` · accuracy ${pct(accuracy)}` : ''}`;
}
