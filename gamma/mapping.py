"""Mappings as plain data: levels of MAESTRO directives, outermost level first.

A mapping is what MAESTRO's ``Dataflow { ... }`` block says: for each cluster level an optional
``Cluster(size, P)`` (every level after the first has one) followed by an ordered list of
``SpatialMap``/``TemporalMap`` directives. Directive order is loop order, outermost first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping as MappingT

import numpy as np

DirectiveKind = Literal["Spatial", "Temporal"]
#: Dimension names a directive may use. Y'/X' are output rows/cols (MAESTRO converts them).
DIMS = ("K", "C", "R", "S", "Y", "X", "Y'", "X'", "M", "N")
#: Position of each dimension name in :data:`DIMS` (the codes of :attr:`MappingBatch.dim`).
DIM_INDEX = {d: i for i, d in enumerate(DIMS)}


@dataclass(frozen=True)
class Directive:
    """``SpatialMap(size, offset) dim`` or ``TemporalMap(size, offset) dim`` (sizes in elements)."""

    kind: DirectiveKind
    dim: str
    size: int
    offset: int

    @property
    def spatial(self) -> bool:
        return self.kind == "Spatial"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "dim": self.dim, "size": self.size, "offset": self.offset}

    @classmethod
    def from_dict(cls, d: MappingT[str, Any]) -> "Directive":
        return cls(str(d["type"]), str(d["dim"]), int(d["size"]), int(d["offset"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Cluster:
    """``Cluster(size, P)``: the level below works on groups of ``size`` sub-units."""

    size: int
    type: str = "P"


@dataclass(frozen=True)
class Level:
    """One cluster level: its opening ``Cluster`` (None for the top level) and its directives."""

    directives: tuple[Directive, ...]
    cluster: Cluster | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.cluster is not None:
            d["cluster"] = {"size": self.cluster.size, "type": self.cluster.type}
        d["directives"] = [x.to_dict() for x in self.directives]
        return d

    @classmethod
    def from_dict(cls, d: MappingT[str, Any]) -> "Level":
        c = d.get("cluster")
        cluster = Cluster(int(c["size"]), str(c.get("type", "P"))) if c else None
        return cls(tuple(Directive.from_dict(x) for x in d["directives"]), cluster)


@dataclass(frozen=True)
class Mapping:
    """A whole dataflow: cluster levels, outermost first."""

    levels: tuple[Level, ...] = field(default_factory=tuple)

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    def to_dict(self) -> dict[str, Any]:
        return {"num_levels": self.num_levels, "levels": [lv.to_dict() for lv in self.levels]}

    @classmethod
    def from_dict(cls, d: MappingT[str, Any]) -> "Mapping":
        """Read the ``mapping`` object of a reference case (or our own ``to_dict`` output)."""
        return cls(tuple(Level.from_dict(x) for x in d["levels"]))


@dataclass
class MappingBatch:
    """``B`` mappings as arrays: what a map space hands a cost model, in no cost model's own
    codes. Levels are padded to ``L`` (outermost first) and directives per level to ``D`` (in
    loop order, outermost first). ``dim`` holds positions in :data:`DIMS`; ``cluster[b, l]`` is
    the size of the ``Cluster`` that opens level ``l`` (0 on the top level and on unused levels);
    ``ndir[b, l]`` counts the directives in use (0 on unused levels). Sizes and offsets in
    elements."""

    nlev: np.ndarray  # (B,) levels in use
    cluster: np.ndarray  # (B, L)
    ndir: np.ndarray  # (B, L)
    dim: np.ndarray  # (B, L, D) positions in DIMS
    spatial: np.ndarray  # (B, L, D) bool: SpatialMap (else TemporalMap)
    size: np.ndarray  # (B, L, D)
    offset: np.ndarray  # (B, L, D)

    def __len__(self) -> int:
        return int(self.nlev.shape[0])

    @classmethod
    def from_mappings(cls, mappings: list[Mapping]) -> "MappingBatch":
        """The batch of ``mappings`` (levels and directives padded to the largest); a
        ``ValueError`` for a dimension not in :data:`DIMS`."""
        B = len(mappings)
        L = max((m.num_levels for m in mappings), default=1) or 1
        D = max((len(lv.directives) for m in mappings for lv in m.levels), default=1) or 1
        out = cls(np.zeros(B, np.int64), np.zeros((B, L), np.int64), np.zeros((B, L), np.int64),
                  np.zeros((B, L, D), np.int64), np.zeros((B, L, D), bool),
                  np.ones((B, L, D), np.int64), np.ones((B, L, D), np.int64))
        for b, m in enumerate(mappings):
            out.nlev[b] = m.num_levels
            for l, level in enumerate(m.levels):
                out.cluster[b, l] = level.cluster.size if (l > 0 and level.cluster) else 0
                out.ndir[b, l] = len(level.directives)
                for d, x in enumerate(level.directives):
                    if x.dim not in DIM_INDEX:
                        raise ValueError(f"mapping {b} level {l}: unknown dimension {x.dim!r}")
                    out.dim[b, l, d], out.spatial[b, l, d] = DIM_INDEX[x.dim], x.spatial
                    out.size[b, l, d], out.offset[b, l, d] = x.size, x.offset
        return out

    def mapping(self, b: int) -> Mapping:
        """Mapping ``b`` as plain data (for files and checks; the search never needs it)."""
        levels = []
        for l in range(int(self.nlev[b])):
            dirs = tuple(Directive("Spatial" if self.spatial[b, l, d] else "Temporal",
                                   DIMS[int(self.dim[b, l, d])], int(self.size[b, l, d]),
                                   int(self.offset[b, l, d]))
                         for d in range(int(self.ndir[b, l])))
            levels.append(Level(dirs, Cluster(int(self.cluster[b, l])) if l > 0 else None))
        return Mapping(tuple(levels))
