"""Compact, torch-free encodings of pruning masks, shared by the engine (writes) and the API (reads).

- A block keep grid (one bit per block: kept or pruned) is packed to bits, zlib-compressed, base64.
- A density grid (share of kept weights per heatmap cell, at most MAX_CELLS x MAX_CELLS) is stored
  as uint8 (0..255), zlib-compressed, base64.
"""

import base64
import zlib

import numpy as np

MAX_CELLS = 256


def _pack(raw: bytes) -> str:
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def _unpack(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text))


def encode_grid(keep: np.ndarray) -> dict:
    keep = np.asarray(keep, dtype=bool)
    return {"shape": list(keep.shape), "bits": _pack(np.packbits(keep, axis=None).tobytes())}


def decode_grid(enc: dict) -> np.ndarray:
    shape = tuple(enc["shape"])
    bits = np.frombuffer(_unpack(enc["bits"]), dtype=np.uint8)
    return np.unpackbits(bits, count=int(np.prod(shape))).astype(bool).reshape(shape)


def density_grid(keep: np.ndarray, max_cells: int = MAX_CELLS) -> np.ndarray:
    """Share of kept elements per cell of a 2-D mask, downsampled to at most max_cells per side."""
    keep = np.asarray(keep, dtype=np.float32)
    rows, cols = keep.shape
    out_r, out_c = min(rows, max_cells), min(cols, max_cells)
    # Cell edges split the rows/cols as evenly as possible; reduceat sums each cell's span.
    r_edges = (np.arange(out_r) * rows) // out_r
    c_edges = (np.arange(out_c) * cols) // out_c
    sums = np.add.reduceat(np.add.reduceat(keep, r_edges, axis=0), c_edges, axis=1)
    counts = np.outer(np.diff(np.append(r_edges, rows)), np.diff(np.append(c_edges, cols)))
    return sums / counts


def encode_density(density: np.ndarray) -> dict:
    density = np.asarray(density, dtype=np.float64)
    q = np.rint(np.clip(density, 0.0, 1.0) * 255).astype(np.uint8)
    return {"shape": list(q.shape), "data": _pack(q.tobytes())}


def decode_density(enc: dict) -> np.ndarray:
    q = np.frombuffer(_unpack(enc["data"]), dtype=np.uint8).reshape(tuple(enc["shape"]))
    return q.astype(np.float64) / 255.0
