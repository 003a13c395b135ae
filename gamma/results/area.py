"""Area beside latency when a comparison holds co-design jobs (``codesign=digamma``,
docs/codesign.md): a co-design job's chosen design has an area under the co-design area model
(results.json ``hardware.area_mm2``) and records its platform's area under the same model
(``platform_hardware.area_mm2``); a fixed-platform job records no area, so it is shown the area
a co-design job recorded for the same platform (name, PEs, L1, L2), else none. Units: mm^2.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

#: What identifies a platform's hardware for its area: name, PEs, L1 (elements per PE), L2.
PlatformKey = tuple[str, str, str, str]


def platform_key(name: Any, num_pes: Any, l1_size: Any, l2_size: Any) -> PlatformKey:
    """The key of a platform's hardware, as text (params and results.json give the same)."""
    return (str(name), str(num_pes), str(l1_size), str(l2_size))


def is_codesign(results: dict[str, Any]) -> bool:
    """Whether a results.json is a co-design job's (it has a ``codesign`` block)."""
    return bool(results.get("codesign"))


def design_area_mm2(results: dict[str, Any]) -> float | None:
    """A co-design job's design area (mm^2); None for other jobs or where none was found."""
    if not is_codesign(results):
        return None
    area = (results.get("hardware") or {}).get("area_mm2")
    return None if area is None else float(area)


def recorded_platform_area(results: dict[str, Any]) -> tuple[PlatformKey, float] | None:
    """A co-design job's platform (key) and its area under the co-design model (mm^2)."""
    hw = results.get("platform_hardware") or {}
    if not is_codesign(results) or hw.get("area_mm2") is None:
        return None
    key = platform_key(hw.get("name", results.get("platform")), hw.get("num_pes"),
                       hw.get("l1_size"), hw.get("l2_size"))
    return key, float(hw["area_mm2"])


def fixed_platform_key(results: dict[str, Any]) -> PlatformKey | None:
    """A fixed-platform job's platform key (its ``hardware`` is the platform); None for a
    co-design job."""
    hw = results.get("hardware") or {}
    if is_codesign(results) or not hw:
        return None
    return platform_key(results.get("platform"), hw.get("num_pes"), hw.get("l1_size"),
                        hw.get("l2_size"))


def unique_areas(pairs: list[tuple[PlatformKey, float]]) -> dict[PlatformKey, float]:
    """Platform areas by key; a platform recorded with different areas (co-design jobs with
    different area models) is left out: its area is not known."""
    seen: dict[PlatformKey, set[float]] = {}
    for key, area in pairs:
        seen.setdefault(key, set()).add(round(area, 12))
    return {k: v.pop() for k, v in seen.items() if len(v) == 1}


def area_cell(area_mm2: float | None, budget_mm2: float | None = None,
              spread: tuple[float, float] | None = None) -> str:
    """A table cell: ``0.1626 (0.1559-0.1759) of 0.1809`` for a co-design arm (median, its
    range over seeds, the budget), ``0.1809 platform`` for a fixed one, blank where unknown."""
    if area_mm2 is None or not math.isfinite(area_mm2):
        return ""
    text = f"{area_mm2:.4f}"
    if spread is not None and spread[0] != spread[1]:
        text += f" ({spread[0]:.4f}-{spread[1]:.4f})"
    if budget_mm2 is None or not math.isfinite(budget_mm2):
        return f"{text} platform"
    return f"{text} of {budget_mm2:.4f}"


def median_or_none(values: list[float | None]) -> float | None:
    """The median of ``values``, None where any is missing (or there are none)."""
    if not values or any(v is None for v in values):
        return None
    return float(statistics.median(values))
