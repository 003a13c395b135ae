"""Mappings as plain data: levels of MAESTRO directives, outermost level first.

A mapping is what MAESTRO's ``Dataflow { ... }`` block says: for each cluster level an optional
``Cluster(size, P)`` (every level after the first has one) followed by an ordered list of
``SpatialMap``/``TemporalMap`` directives. Directive order is loop order, outermost first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping as MappingT

DirectiveKind = Literal["Spatial", "Temporal"]
#: Dimension names a directive may use. Y'/X' are output rows/cols (MAESTRO converts them).
DIMS = ("K", "C", "R", "S", "Y", "X", "Y'", "X'", "M", "N")


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
