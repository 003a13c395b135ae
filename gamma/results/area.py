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


def job_area(results: dict[str, Any]) -> dict[str, Any]:
    """A job's area figures from its results.json: ``codesign`` (a co-design job),
    ``area_mm2`` (its design's area; None for a fixed-platform job or where no design was
    found), ``budget_mm2`` (co-design), ``platform`` (its platform's key) and
    ``platform_area_mm2`` (the platform under the co-design model, as a co-design job records
    it; None for other jobs)."""
    codesign = is_codesign(results)
    hw = (results.get("platform_hardware") if codesign else results.get("hardware")) or {}
    return {"codesign": codesign, "area_mm2": design_area_mm2(results),
            "budget_mm2": results["codesign"].get("area_budget_mm2") if codesign else None,
            "platform": platform_key(hw.get("name", results.get("platform")), hw.get("num_pes"),
                                     hw.get("l1_size"), hw.get("l2_size")),
            "platform_area_mm2": hw.get("area_mm2") if codesign else None}


def platform_areas(areas: list[dict[str, Any]]) -> dict[PlatformKey, float]:
    """The platforms' areas (mm^2) as the co-design jobs among ``areas`` (:func:`job_area`)
    recorded them, by key; a platform recorded with different areas (co-design jobs with
    different area models) is left out: its area is not known."""
    seen: dict[PlatformKey, set[float]] = {}
    for a in areas:
        if a["platform_area_mm2"] is not None:
            seen.setdefault(a["platform"], set()).add(round(float(a["platform_area_mm2"]), 12))
    return {k: v.pop() for k, v in seen.items() if len(v) == 1}


def arm_area(areas: list[dict[str, Any]], platforms: dict[PlatformKey, float]) -> dict[str, Any]:
    """An arm's area figures (mm^2) over its jobs' ``areas`` (:func:`job_area`): ``codesign``
    (every job is co-design), ``area_mm2`` (the designs' median, None unless every seed found
    one; for a fixed-platform arm its platform's area from ``platforms``, else None),
    ``area_min``, ``area_max``, ``area_budget_mm2`` (co-design)."""
    if areas and all(a["codesign"] for a in areas):
        found = [a["area_mm2"] for a in areas if a["area_mm2"] is not None]
        return {"codesign": True, "area_mm2": median_or_none([a["area_mm2"] for a in areas]),
                "area_min": min(found, default=None), "area_max": max(found, default=None),
                "area_budget_mm2": median_or_none([a["budget_mm2"] for a in areas])}
    keys = {a["platform"] for a in areas}
    area = platforms.get(keys.pop()) if len(keys) == 1 else None
    return {"codesign": False, "area_mm2": area, "area_min": area, "area_max": area,
            "area_budget_mm2": None}


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
