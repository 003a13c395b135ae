"""Accelerator hardware description, in MAESTRO's terms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np

from gamma.errors import HardwareError
from gamma.limits import MAX_HARDWARE, MAX_SIZE

#: Fields that only bound the mapping's buffer requirements (compared, never multiplied).
CAPACITY_FIELDS = ("l1_size", "l2_size")


@dataclass(frozen=True)
class Hardware:
    """One spatial accelerator.

    Sizes are in elements (MAESTRO's "bytes"), bandwidths in elements/cycle.
    ``l1_size`` is per PE and ``l2_size`` is the shared buffer; both are capacity constraints
    only (they never change a cost-model number).
    """

    num_pes: int
    l1_size: int
    l2_size: int
    noc_bw: int
    offchip_bw: int
    noc_hops: int = 1
    noc_hop_latency: int = 1
    num_simd_lanes: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    object.__setattr__(self, f.name, int(value))
                    value = int(value)
                else:
                    raise HardwareError(f.name, value, "must be an integer")
            minimum = 0 if f.name in ("noc_hops", "noc_hop_latency") else 1
            if value < minimum:
                raise HardwareError(f.name, value, f"must be at least {minimum}")
            maximum = MAX_HARDWARE if f.name in CAPACITY_FIELDS else MAX_SIZE
            if value > maximum:
                raise HardwareError(f.name, value, f"must be at most {maximum:,} (the cost model "
                                                   "computes in int64)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Hardware":
        """Build from a dict with the field names above; unknown keys are ignored
        (so a reference case's ``hw`` or a platform config can be passed as is)."""
        names = {f.name for f in fields(cls)}
        missing = [n for n in ("num_pes", "l1_size", "l2_size", "noc_bw", "offchip_bw") if n not in data]
        if missing:
            raise HardwareError(missing[0], None, "is required")
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class AreaModel:
    """The co-design area model (DiGamma's): an INT8 MAC per PE plus SRAM bits for the buffers.
    Its constants come from the config (``codesign.area``, conf/codesign/digamma.yaml), where
    their source is stated; docs/codesign.md explains them."""

    mac_um2: float  # area of one PE's MAC (um^2)
    sram_um2_per_bit: float  # SRAM area per bit (um^2/bit)
    bits_per_element: int  # bits of one buffer element (8: INT8)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AreaModel":
        """From ``codesign.area`` (keys ``mac_um2``, ``sram_um2_per_bit``, ``bits_per_element``),
        each a positive number, else a :class:`HardwareError` naming it."""
        values = {}
        for f in fields(cls):
            v = data.get(f.name) if isinstance(data, Mapping) else None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise HardwareError(f"codesign.area.{f.name}", v, "must be a positive number")
            values[f.name] = v
        return cls(**values)

    def sram_um2(self, elements: Any) -> Any:
        """Area of ``elements`` buffer elements (um^2); works on numpy arrays."""
        return elements * self.bits_per_element * self.sram_um2_per_bit


def area_breakdown_um2(num_pes: int, l1_size: int, l2_size: int, model: AreaModel) -> dict[str, float]:
    """The area of an array of ``num_pes`` PEs with ``l1_size`` elements of L1 per PE and an
    ``l2_size``-element L2, by part (um^2): ``pes_um2`` (the MACs), ``l1_um2`` (all PEs' L1),
    ``l2_um2`` and ``total_um2``."""
    pes = num_pes * model.mac_um2
    l1 = float(model.sram_um2(num_pes * l1_size))
    l2 = float(model.sram_um2(l2_size))
    return {"pes_um2": float(pes), "l1_um2": l1, "l2_um2": l2, "total_um2": float(pes + l1 + l2)}


def area_um2(num_pes: Any, l1_size: Any, l2_size: Any, model: AreaModel) -> Any:
    """Total area (um^2) of PEs x MAC + (L1 x PEs + L2) x bits x SRAM area per bit; elementwise
    on numpy arrays (one value per hardware)."""
    return num_pes * model.mac_um2 + model.sram_um2(num_pes * l1_size + l2_size)


def pes_within_um2(area: Any, l1_size: Any, l2_size: Any, model: AreaModel) -> Any:
    """The most PEs whose design, with ``l1_size`` elements of L1 per PE and ``l2_size`` of L2,
    takes at most ``area`` um^2 (:func:`area_um2` solved for the PEs, rounded down; below 1
    where not even one PE fits); elementwise on numpy arrays."""
    return np.floor((area - model.sram_um2(l2_size)) / (model.mac_um2 + model.sram_um2(l1_size)))


def hardware_area_um2(hw: Hardware, model: AreaModel) -> float:
    """The area of ``hw`` under ``model`` (um^2)."""
    return float(area_um2(hw.num_pes, hw.l1_size, hw.l2_size, model))
