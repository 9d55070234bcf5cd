"""Block pruning (coarse-grained blocky sparse structure): zero whole r x c blocks of each layer's 2-D
weight view.

The 2-D view is out x (in * kh * kw). The grid has ceil(out / r) x ceil(cols / c) blocks; blocks on the
bottom and right edges that do not fill r x c are scored over the elements they have (mean_abs divides
by their real element count; l1 / l2 sum over what is there).

Scores: mean_abs = mean |w| (the paper), l1 = sum |w|, l2 = sqrt(sum w^2); each divided by the layer's
largest block score so that `global` scope can compare layers.

Targets are fractions of *blocks*: a layer with B blocks at target s ends with exactly round(s * B) pruned
blocks. Blocks already pruned in an earlier round count toward it and stay pruned; the rest are the
lowest-scoring alive blocks (the cut is the round(s * B)-th smallest score; base.select_keep, shared
with magnitude pruning). When r and c divide the weight's sides, element sparsity equals block sparsity;
with edge blocks the element sparsity differs from it by less than one block's share (edge blocks hold
fewer elements).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from worker.engine.pruning.base import MaskPruner, alive_blocks, lowest_mask, view_2d

SCORES = ("mean_abs", "l1", "l2")
CHUNK_ELEMENTS = 1 << 20  # rows are reduced in chunks of about this many weights: no huge temporaries


def grid_shape(shape2d: tuple[int, int], block: tuple[int, int]) -> tuple[int, int]:
    return math.ceil(shape2d[0] / block[0]), math.ceil(shape2d[1] / block[1])


def _sum_groups(x: torch.Tensor, size: int, out: torch.Tensor) -> torch.Tensor:
    """out = x (a view ... x size) summed over its last dim. For small sizes a few strided adds beat
    torch.sum, whose reduction over a short inner dimension is slow on CPU."""
    if size == 1:
        return out.copy_(x[..., 0])
    if size > 16:
        return torch.sum(x, dim=-1, out=out)
    torch.add(x[..., 0], x[..., 1], out=out)
    for i in range(2, size):
        out.add_(x[..., i])
    return out


def _block_sums(w: torch.Tensor, r: int, c: int, square: bool) -> torch.Tensor:
    """Sum of |w| (or w^2) over each r x c block of a matrix whose sides are multiples of r and c.
    Works through row chunks with reused buffers: no temporaries the size of the weight."""
    rows, cols = w.shape
    grid_r, grid_c = rows // r, cols // c
    out = torch.empty(grid_r, grid_c, dtype=torch.float32, device=w.device)
    step = r * max(1, CHUNK_ELEMENTS // (cols * r))
    buf = torch.empty(min(step, rows), cols, dtype=torch.float32, device=w.device)
    row_sums = torch.empty(min(step, rows) // r, cols, dtype=torch.float32, device=w.device)
    for start in range(0, rows, step):
        n = min(step, rows - start)
        chunk = buf[:n]
        if square:
            torch.mul(w[start : start + n], w[start : start + n], out=chunk)
        else:
            torch.abs(w[start : start + n], out=chunk)
        # rows of a block first (long contiguous adds), then the columns on r times fewer elements
        summed_rows = _sum_groups(chunk.view(n // r, r, cols).transpose(1, 2), r, row_sums[: n // r])
        _sum_groups(summed_rows.view(n // r, grid_c, c), c, out[start // r : (start + n) // r])
    return out


def block_scores(weight2d: torch.Tensor, block: tuple[int, int], score: str = "mean_abs") -> torch.Tensor:
    """Score of every block of a 2-D weight, divided by the largest one (a grid_shape tensor)."""
    if score not in SCORES:
        raise ValueError(f"method.score: unknown score {score!r}; allowed: {', '.join(SCORES)}")
    r, c = block
    rows, cols = weight2d.shape
    grid_r, grid_c = grid_shape((rows, cols), block)
    w = weight2d.detach().to(torch.float32)
    if rows % r or cols % c:
        w = F.pad(w, (0, grid_c * c - cols, 0, grid_r * r - rows))  # zero padding adds nothing to a sum
    sums = _block_sums(w, r, c, square=(score == "l2"))
    if score == "l2":
        sums = sums.sqrt_()
    elif score == "mean_abs" and (rows % r or cols % c):
        row_counts = torch.full((grid_r,), float(r), device=w.device)
        row_counts[-1] = rows - (grid_r - 1) * r
        col_counts = torch.full((grid_c,), float(c), device=w.device)
        col_counts[-1] = cols - (grid_c - 1) * c
        sums = sums.div_(torch.outer(row_counts, col_counts))
    # (with full blocks mean_abs = l1 / (r * c): the normalisation below cancels the constant)
    top = sums.max()
    return sums.div_(top) if top > 0 else sums


def expand_blocks(keep_grid: torch.Tensor, block: tuple[int, int], shape2d: tuple[int, int]) -> torch.Tensor:
    """Element mask (shape2d) from a per-block keep grid."""
    r, c = block
    grid_r, grid_c = keep_grid.shape
    full = keep_grid[:, None, :, None].expand(grid_r, r, grid_c, c).reshape(grid_r * r, grid_c * c)
    if full.shape != torch.Size(shape2d):
        full = full[: shape2d[0], : shape2d[1]].contiguous()
    return full


def block_mask(
    weight2d: torch.Tensor,
    block: tuple[int, int],
    sparsity: float,
    score: str = "mean_abs",
    alive: torch.Tensor | None = None,
) -> torch.Tensor:
    """Keep grid of one layer pruned to `sparsity` of its blocks (already dead blocks stay dead)."""
    scores = block_scores(weight2d, block, score)
    alive = torch.ones_like(scores, dtype=torch.bool) if alive is None else alive
    pruned = lowest_mask(scores, alive, round(sparsity * scores.numel()))
    return ~pruned.view(scores.shape)


class BlockPruner(MaskPruner):
    method = "block"

    def __init__(
        self, layer_names: list[str], block: tuple[int, int] = (2, 2), score: str = "mean_abs", scope: str = "layer"
    ):
        super().__init__(layer_names, scope)
        if len(block) != 2 or min(block) < 1:
            raise ValueError(f"method.block_size: must be positive integers, got {block}")
        if score not in SCORES:
            raise ValueError(f"method.score: unknown score {score!r}; allowed: {', '.join(SCORES)}")
        self.block = (int(block[0]), int(block[1]))
        self.score = score

    def block_shape(self) -> tuple[int, int]:
        return self.block

    def unit_scores(self, weight: torch.Tensor) -> torch.Tensor:
        return block_scores(view_2d(weight), self.block, self.score)

    def unit_alive(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        return alive_blocks(view_2d(self.alive(name, weight)), self.block)

    def expand(self, keep: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return expand_blocks(keep, self.block, view_2d(weight).shape).reshape(weight.shape)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "block": list(self.block), "score": self.score}
