"""Accelerator hardware description, in MAESTRO's terms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

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
