"""Packing mappings and layers into the kernel's integer arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gamma.costmodel import kernel as K
from gamma.limits import MAX_PRODUCT, MAX_SIZE
from gamma.mapping import DIMS, Mapping, MappingBatch
from gamma.workloads.layer import Layer

DIM_CODE = {"K": K.V_K, "C": K.V_C, "R": K.V_R, "S": K.V_S, "Y": K.V_Y, "X": K.V_X,
            "M": K.V_M, "N": K.V_N, "Y'": K.V_YP, "X'": K.V_XP}
DIM_NAME = {v: k for k, v in DIM_CODE.items()}
#: The kernel's code of each position in :data:`gamma.mapping.DIMS` (a batch's ``dim`` arrays).
BATCH_DIM_CODE = np.array([DIM_CODE[d] for d in DIMS], np.int64)
LAYER_TYPE_CODE = {"CONV": K.T_CONV, "DSCONV": K.T_DSCONV, "GEMM": K.T_GEMM}
#: Raw directives per level a packed mapping may hold (before inheritance and unrolling).
MAX_RAW_DIRECTIVES = 10


@dataclass
class PackedMappings:
    """A batch of ``B`` mappings as arrays (levels padded to ``MAXL``, directives to
    ``MAX_RAW_DIRECTIVES``). ``cluster[b, l]`` is the Cluster size before level ``l`` (0 at the
    top); ``dvar`` uses the kernel's ``V_*`` codes; ``dsp`` is 1 for a SpatialMap."""

    nlev: np.ndarray
    cluster: np.ndarray
    nd: np.ndarray
    dvar: np.ndarray
    dsp: np.ndarray
    dsz: np.ndarray
    dofs: np.ndarray

    def __len__(self) -> int:
        return int(self.nlev.shape[0])

    @classmethod
    def empty(cls, batch: int) -> "PackedMappings":
        shape = (batch, K.MAXL, MAX_RAW_DIRECTIVES)
        return cls(
            nlev=np.zeros(batch, np.int64),
            cluster=np.zeros((batch, K.MAXL), np.int64),
            nd=np.zeros((batch, K.MAXL), np.int64),
            dvar=np.zeros(shape, np.int64),
            dsp=np.zeros(shape, np.int64),
            dsz=np.ones(shape, np.int64),
            dofs=np.ones(shape, np.int64),
        )


class PackError(ValueError):
    """A mapping whose shape the packed format cannot hold (too many levels/directives)."""


def _held(value: int) -> int:
    """A size as the packed arrays hold it: anything above :data:`gamma.limits.MAX_SIZE` as
    MAX_SIZE + 1, which :func:`overflow_rows` rejects (no Python int too large for int64)."""
    return min(int(value), MAX_SIZE + 1)


def pack(mappings: Sequence[Mapping]) -> PackedMappings:
    """Pack mapping objects (file/validation path; the search builds packed arrays directly)."""
    p = PackedMappings.empty(len(mappings))
    for b, m in enumerate(mappings):
        if not 1 <= m.num_levels <= K.MAXL:
            raise PackError(f"mapping {b}: {m.num_levels} levels; 1 to {K.MAXL} are supported")
        p.nlev[b] = m.num_levels
        for l, level in enumerate(m.levels):
            if len(level.directives) > MAX_RAW_DIRECTIVES:
                raise PackError(f"mapping {b} level {l}: {len(level.directives)} directives; "
                                f"at most {MAX_RAW_DIRECTIVES} are supported")
            if l > 0 and level.cluster is None:
                raise PackError(f"mapping {b} level {l}: a level after the first needs a Cluster")
            p.cluster[b, l] = _held(level.cluster.size) if (l > 0 and level.cluster) else 0
            p.nd[b, l] = len(level.directives)
            for d, x in enumerate(level.directives):
                if x.dim not in DIM_CODE:
                    raise PackError(f"mapping {b} level {l}: unknown dimension {x.dim!r}")
                p.dvar[b, l, d] = DIM_CODE[x.dim]
                p.dsp[b, l, d] = 1 if x.spatial else 0
                p.dsz[b, l, d] = _held(x.size)
                p.dofs[b, l, d] = _held(x.offset)
    return p


def pack_batch(batch: MappingBatch) -> PackedMappings:
    """A map space's batch (:class:`~gamma.mapping.MappingBatch`) in the kernel's arrays: the
    search's path, vectorized (one copy per array)."""
    B, L, D = batch.dim.shape
    if L > K.MAXL or D > MAX_RAW_DIRECTIVES:
        raise PackError(f"a batch of {L} levels and {D} directives per level; at most {K.MAXL} "
                        f"levels and {MAX_RAW_DIRECTIVES} directives are supported")
    p = PackedMappings.empty(B)
    p.nlev[:] = batch.nlev
    p.cluster[:, :L] = batch.cluster
    p.nd[:, :L] = batch.ndir
    p.dvar[:, :L, :D] = BATCH_DIM_CODE[batch.dim]
    p.dsp[:, :L, :D] = batch.spatial
    p.dsz[:, :L, :D] = batch.size
    p.dofs[:, :L, :D] = batch.offset
    return p


def layer_arrays(layer: Layer) -> tuple[int, np.ndarray]:
    """(layer type code, dims indexed by ``V_*``) as the kernel takes them."""
    dims = np.ones(K.NV, np.int64)
    if layer.type == "GEMM":
        dims[K.V_M], dims[K.V_N], dims[K.V_K] = layer.M, layer.N, layer.K
    else:
        dims[K.V_K], dims[K.V_C] = layer.K, layer.C
        dims[K.V_R], dims[K.V_S], dims[K.V_Y], dims[K.V_X] = layer.R, layer.S, layer.Y, layer.X
    dims[K.V_YP] = dims[K.V_Y] - dims[K.V_R] + 1
    dims[K.V_XP] = dims[K.V_X] - dims[K.V_S] + 1
    return LAYER_TYPE_CODE[layer.type], dims


#: The dimensions whose product bounds the kernel's counts, per layer type (input-centric Y, X).
_PRODUCT_VARS = {K.T_CONV: (K.V_K, K.V_C, K.V_R, K.V_S, K.V_Y, K.V_X),
                 K.T_DSCONV: (K.V_K, K.V_C, K.V_R, K.V_S, K.V_Y, K.V_X),
                 K.T_GEMM: (K.V_M, K.V_N, K.V_K)}


def overflow_rows(p: PackedMappings, ltype: int, ldims: np.ndarray) -> np.ndarray:
    """Per mapping, whether the kernel's int64 arithmetic could overflow on it: a size, offset or
    Cluster above :data:`gamma.limits.MAX_SIZE`, or the product over the layer's dimensions of
    the dimension or the largest tile on it (Y'/X' tiles as input rows/cols), whichever is
    larger, above :data:`gamma.limits.MAX_PRODUCT` (see :mod:`gamma.limits`)."""
    B = len(p)
    if B == 0:
        return np.zeros(0, bool)
    largest = max(int(p.dsz.max()), int(p.dofs.max()), int(p.cluster.max()))
    if largest <= MAX_SIZE:  # cheap bound: every tile at most the largest size (plus R or S)
        rows = largest + int(max(ldims[K.V_R], ldims[K.V_S])) - 1
        bound = 1.0
        for v in _PRODUCT_VARS[ltype]:
            bound *= max(float(ldims[v]), float(rows))
        if bound <= MAX_PRODUCT:
            return np.zeros(B, bool)
    used = ((np.arange(K.MAXL)[None, :, None] < p.nlev[:, None, None])
            & (np.arange(MAX_RAW_DIRECTIVES)[None, None, :] < p.nd[:, :, None]))
    size, offset = np.where(used, p.dsz, 1), np.where(used, p.dofs, 1)
    bad = ((size > MAX_SIZE) | (offset > MAX_SIZE)).any(axis=(1, 2)) | (p.cluster > MAX_SIZE).any(axis=1)
    var = np.where(p.dvar == K.V_YP, K.V_Y, np.where(p.dvar == K.V_XP, K.V_X, p.dvar))
    rows = (size.astype(np.float64) + np.where(p.dvar == K.V_YP, ldims[K.V_R] - 1, 0)
            + np.where(p.dvar == K.V_XP, ldims[K.V_S] - 1, 0))
    product = np.ones(B, np.float64)
    for v in _PRODUCT_VARS[ltype]:
        tile = np.where(used & (var == v), rows, 0.0).max(axis=(1, 2), initial=0.0)
        product *= np.maximum(float(ldims[v]), tile)
    return bad | (product > MAX_PRODUCT)
