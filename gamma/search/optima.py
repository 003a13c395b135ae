"""The cache of proven latency optima: ``outputs/optima.json`` (``optima=PATH`` elsewhere).

A proven optimum (``optimizer=exhaustive`` with ``proven_optimal`` true) holds for one layer shape
on one hardware, under one system's level limits and fixed cluster, one map space setting and one
guard setting; :func:`key` joins exactly these. The file::

    {"version": 1,
     "optima": {KEY: {"optimum_cycles": 358050, "shape": "CONV K512 ...", "platform": "edge",
                      "system": "s2", "mapping": {...}, "evaluations": 1000, "time_s": 2.7,
                      "found": "2026-11-29T21:40:00Z"}}}

KEY is canonical JSON of ``{"layer": shape, "hardware": {...}, "levels": [min, max],
"fixed_inner_cluster": n | null, "inner_tiles": ..., "parallel_dims": [sorted], "guard": bool}``.
Writers (run.py jobs, scripts/optima.py) take a file lock and rewrite the file atomically.
Units: cycles, evaluations, seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from pathlib import Path
from typing import Any, Iterator

from gamma.results.records import write_json_atomic
from gamma.search.rules import SearchRules, search_rules

FILE_NAME = "optima.json"
VERSION = 1


def space_context(cfg: dict[str, Any], rules: SearchRules | None = None) -> dict[str, Any]:
    """What of a job's config (plain dict, as run.py composes it) a proven optimum depends on,
    besides the layer and the hardware: the system's levels, the map space and the guard as the
    job's rules apply them (``paper_mode=true``: inner tiles ``any``, no guard), and the cost
    model the optimum was computed with."""
    rules = rules or search_rules(cfg)
    sysc, ms = cfg["system"], cfg.get("mapspace") or {}
    return {"levels": [int(sysc["min_levels"]), int(sysc["max_levels"])],
            "fixed_inner_cluster": (None if sysc.get("fixed_inner_cluster") is None
                                    else int(sysc["fixed_inner_cluster"])),
            "inner_tiles": rules.inner_tiles,
            "parallel_dims": sorted(str(d) for d in ms.get("parallel_dims", ["K", "C", "Y", "X"])),
            "guard": rules.guard, "costmodel": rules.costmodel}


def key(shape: str, hardware: dict[str, Any], context: dict[str, Any]) -> str:
    """The cache key of layer ``shape`` (``Layer.shape``) on ``hardware`` (``Hardware.to_dict``)
    under ``context`` (:func:`space_context`)."""
    hw = {k: int(v) for k, v in sorted(hardware.items())}
    return json.dumps({"layer": shape, "hardware": hw, **context}, sort_keys=True,
                      separators=(",", ":"))


def cache_file(cfg: dict[str, Any], outputs: Path) -> Path:
    """The job's cache: ``cfg['optima']`` if set, else ``outputs/optima.json``."""
    given = cfg.get("optima")
    return Path(given) if given else Path(outputs) / FILE_NAME


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The cached optima by key (empty if the file is missing or unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(data.get("optima") or {}) if isinstance(data, dict) else {}


def lookup(path: Path, k: str) -> int | None:
    """The proven optimum (cycles) cached under ``k``, else None."""
    entry = load(path).get(k)
    return int(entry["optimum_cycles"]) if entry else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store(path: Path, k: str, entry: dict[str, Any]) -> None:
    """Record a proven optimum (``entry["optimum_cycles"]`` and what else describes it) under
    ``k``. A different optimum already cached under ``k`` is an error (a bug in the bounds or the
    cost model): raises ValueError and leaves the file unchanged."""
    path = Path(path)
    with _locked(path):
        optima = load(path)
        old = optima.get(k)
        if old and int(old["optimum_cycles"]) != int(entry["optimum_cycles"]):
            raise ValueError(f"{path}: optimum {entry['optimum_cycles']} cycles for {k}, but "
                             f"{old['optimum_cycles']} cycles is cached")
        optima[k] = {**entry, "found": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_json_atomic(path, {"version": VERSION, "optima": dict(sorted(optima.items()))})


def record_entry(layer_record: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """The cache entry of a proven layer of a results.json (``layer_record`` in ``results``)."""
    ex = layer_record.get("exhaustive") or {}
    return {"optimum_cycles": int(layer_record["best_cost"]), "shape": layer_record["shape"],
            "platform": results.get("platform"), "system": results.get("system"),
            "mapping": layer_record.get("mapping"), "evaluations": ex.get("evaluations"),
            "time_s": ex.get("time_s")}


def context_of_results(results: dict[str, Any],
                       params: dict[str, str] | None = None) -> dict[str, Any] | None:
    """:func:`space_context` of the job behind a results.json: its ``space`` field, else the
    run's MLflow params (flattened config); None if neither tells."""
    if results.get("space"):
        return dict(results["space"])
    p = params or {}
    paper = str(p.get("paper_mode", results.get("paper_mode", False))) in ("True", "true")
    try:
        fixed = p.get("system.fixed_inner_cluster")
        return {"levels": [int(p["system.min_levels"]), int(p["system.max_levels"])],
                "fixed_inner_cluster": None if fixed in (None, "None", "null") else int(fixed),
                "inner_tiles": "any" if paper else p.get("mapspace.inner_tiles", "divisors"),
                "parallel_dims": sorted(json.loads(p.get("mapspace.parallel_dims", '["K","C","Y","X"]'))),
                "guard": (not paper) and str(p.get("guard", results.get("guard", True))) in ("True", "true"),
                "costmodel": p.get("costmodel.name", "maestro")}
    except (KeyError, ValueError):
        return None


def optima_of_results(results: dict[str, Any], optima: dict[str, dict[str, Any]],
                      params: dict[str, str] | None = None) -> list[int | None]:
    """Per layer of a results.json (in its order), the cached optimum (cycles) or None; a layer
    that records ``optimum_cycles`` itself keeps it."""
    ctx = context_of_results(results, params)
    hw = results.get("hardware")
    out: list[int | None] = []
    for r in results.get("layers") or []:
        if r.get("optimum_cycles") is not None:
            out.append(int(r["optimum_cycles"]))
            continue
        entry = optima.get(key(r["shape"], hw, ctx)) if (ctx and hw) else None
        out.append(int(entry["optimum_cycles"]) if entry else None)
    return out
