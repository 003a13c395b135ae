"""A sweep read as one result: its progress file, each job's one console line, and the summary
table of its jobs (arm x system) printed at the end, written beside the jobs and logged to the
sweep's parent run.

The launching process writes ``<sweep dir>/sweep.json`` (:class:`SweepInfo`: how many jobs, when
the sweep started) before its jobs start; a job reads it to say "job k of N" and how long the
sweep still needs. At the end the launching process reads every job's results.json written
since the sweep started (:func:`sweep_jobs`) and makes the summary (:func:`summarize`). Units:
cycles, nJ, seconds.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gamma.errors import GammaError
from gamma.results import area as A
from gamma.results.layout import read_results, write_text_atomic

#: The sweep's progress file in its folder.
INFO_FILE = "sweep.json"
#: The summary table (text), its rows (JSON) in the sweep folder.
SUMMARY_TEXT, SUMMARY_JSON = "sweep_summary.txt", "sweep_summary.json"
#: Config entries that tell the arms of a sweep apart in its summary, beside the label.
PLACE_KEYS = ("model", "system", "platform")


@dataclass
class SweepInfo:
    """What a sweep's jobs know of it: ``jobs`` (None where the sweeper does not say), ``start``
    (seconds since the epoch), ``swept`` (the settings that take several values, e.g.
    ``["optimizer", "system"]``; None where the sweeper does not say)."""

    jobs: int | None
    start: float
    swept: list[str] | None = None

    def write(self, sweep_dir: Path) -> None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(sweep_dir / INFO_FILE, json.dumps(asdict(self)) + "\n")

    @staticmethod
    def read(sweep_dir: Path) -> "SweepInfo | None":
        """The sweep's info, None where it has none (or it cannot be read)."""
        try:
            data = json.loads((sweep_dir / INFO_FILE).read_text(encoding="utf-8"))
            swept = data.get("swept")
            return SweepInfo(int(data["jobs"]) if data.get("jobs") else None, float(data["start"]),
                             [str(k) for k in swept] if isinstance(swept, list) else None)
        except (OSError, ValueError, KeyError, TypeError):
            return None


def sweep_jobs(sweep_dir: Path, since: float) -> list[dict[str, Any]]:
    """The results of the sweep's jobs: every ``<sweep dir>/*/results.json`` that can be read
    whose job started since ``since`` (seconds since the epoch: Hydra's ``.hydra/`` files of the
    job, else its results.json; an older job of a reused sweep folder is not one of them), each
    with its ``run_dir`` and ``earlier`` (results.json from before the sweep: a finished job that
    ``resume=true`` did not run again)."""
    jobs = []
    for path in sorted(sweep_dir.glob("*/results.json")):
        try:
            started = max((f.stat().st_mtime for f in (path.parent / ".hydra").glob("*.yaml")),
                          default=path.stat().st_mtime)
            if started >= since:
                jobs.append({**job_results(path, since), "run_dir": str(path.parent)})
        except (OSError, GammaError):
            continue
    return jobs


def job_results(path: Path, since: float) -> dict[str, Any]:
    """A job's results.json with ``earlier``: written before ``since`` (the sweep's start), i.e.
    a finished job that ``resume=true`` did not run again."""
    earlier = path.stat().st_mtime < since
    return {**read_results(path), "earlier": earlier}


def job_done(sweep_dir: Path, info: "SweepInfo", k: int) -> int:
    """Note that job ``k`` of the sweep has ended (an empty file named ``k`` in a folder of this
    sweep's start, so an older sweep in the same folder does not count) and return how many
    of its jobs have: counting files, not reading every job's results.json at every end."""
    folder = sweep_dir / f".jobs_done_{info.start:.6f}"
    try:
        folder.mkdir(exist_ok=True)
        (folder / str(k)).touch()
        return len(list(folder.iterdir()))
    except OSError:
        return 0


def note_failed(sweep_dir: Path, info: "SweepInfo", k: int, record: dict[str, Any]) -> None:
    """Note that job ``k`` of the sweep failed: ``record`` (its number, overrides, error) as
    ``k.json`` in a folder of this sweep's start, read back by :func:`failed_jobs`."""
    folder = sweep_dir / f".jobs_failed_{info.start:.6f}"
    try:
        folder.mkdir(exist_ok=True)
        write_text_atomic(folder / f"{k}.json", json.dumps(record) + "\n")
    except OSError:
        pass


def failed_jobs(sweep_dir: Path, info: "SweepInfo") -> list[dict[str, Any]]:
    """The records :func:`note_failed` wrote for this sweep, by job number."""
    records = []
    for path in (sweep_dir / f".jobs_failed_{info.start:.6f}").glob("*.json"):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(records, key=lambda r: r.get("job") if isinstance(r.get("job"), int) else 0)


# --- a job's line ---------------------------------------------------------------------------------
def job_line(results: dict[str, Any]) -> str:
    """A job's outcome in one line: its latency, ratios and feasible layers (a co-design job's
    design and its area too), or its status."""
    t = results.get("totals") or {}
    wall = results.get("wall_s")
    took = f" in {wall:,.1f} s" if isinstance(wall, (int, float)) else ""
    if results.get("status") != "finished":
        why = results.get("error")
        return f"{results.get('status')}{took}" + (f": {why}" if why else "")
    if results.get("earlier"):
        took += ", finished before this sweep (resume): not run again"
    if not t.get("feasible"):
        bad = t.get("infeasible_layers") or []
        return f"infeasible: no mapping found for {len(bad)} of {t.get('layers')} layers{took}"
    parts = [f"{t['latency_cycles']:,.0f} cycles", f"{ratio(t.get('ratio_to_compute_bound'))} bound"]
    if t.get("ratio_to_optimum") is not None:
        parts.append(f"{ratio(t['ratio_to_optimum'])} optimum")
    if results.get("objective") not in (None, "latency"):  # its own total; the bounds are latency's
        parts = [f"{results['objective']} {objective_total(results)}",
                 f"latency {parts[0]}, {parts[1].replace('bound', 'the compute bound')}", *parts[2:]]
    if A.is_codesign(results) and results.get("hardware"):
        parts.append(design_text(results))
    return ", ".join(parts) + f", {t.get('layers')} layers{took}"


def design_text(results: dict[str, Any]) -> str:
    """A co-design job's design in a few words: ``design 17 PEs, 0.0963 of 0.1809 mm^2``."""
    hw, budget = results["hardware"], results["codesign"].get("area_budget_mm2")
    return (f"design {hw['num_pes']:,} PEs, {hw['area_mm2']:.4f}"
            + (f" of {budget:.4f}" if budget is not None else "") + " mm^2")


def objective_total(results: dict[str, Any]) -> str:
    """The job's own objective summed over its layers, with its unit."""
    costs = [r.get("best_cost") for r in results.get("layers") or []]
    if not costs or any(c is None for c in costs):
        return "-"
    unit = results.get("objective_unit") or ""
    total = sum(costs)
    return f"{total:,.0f} {unit}".rstrip() if abs(total) >= 100 else f"{total:.4g} {unit}".rstrip()


def progress_note(k: int, info: SweepInfo | None, done: int, now: float | None = None) -> str:
    """``job k of N``, with how many jobs have ended and, once one has, an estimate of the time
    the sweep still needs (elapsed time per ended job times the jobs left)."""
    if info is None:
        return f"job {k}"
    if not info.jobs:
        return f"job {k}, {done} done"
    elapsed = (time.time() if now is None else now) - info.start
    left = max(0, info.jobs - done)
    eta = f", about {duration(elapsed / done * left)} left" if done and left else ""
    return f"job {k} of {info.jobs}, {done} done{eta}"


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``1 h 2 min``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def ratio(x: float | None) -> str:
    """A ratio for people: ``1.0377x``; ``-`` where unknown."""
    return "-" if x is None or not math.isfinite(x) else f"{x:.4f}x"


# --- the summary ----------------------------------------------------------------------------------
def arm_of(results: dict[str, Any]) -> tuple[str, ...]:
    """The row a job belongs to: its label, then model, system and platform."""
    return (str(results.get("label") or results.get("optimizer")),
            *(str(results.get(k)) for k in PLACE_KEYS))


def summarize(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per arm x model x system x platform, over its seeds: ``latency_cycles`` (median
    of the seeds' totals; None unless every seed is feasible), ``latency_min``,
    ``latency_max``, ``x_bound`` and ``x_optimum`` (medians; x_optimum where every layer's
    optimum is known), ``feasible_layers`` (the fewest of the seeds), ``layers``, ``seeds``,
    ``failed`` (jobs that did not finish), ``wall_s`` (sum of the jobs' wall times); and the
    area (mm^2, :func:`gamma.results.area.arm_area`)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for job in jobs:
        groups.setdefault(arm_of(job), []).append(job)
    platforms = A.platform_areas([A.job_area(j) for j in jobs])
    rows = []
    for key, members in groups.items():
        done = [j for j in members if j.get("status") == "finished"]
        totals = [j.get("totals") or {} for j in done]
        feasible = [t for t in totals if t.get("feasible")]
        complete = bool(done) and len(feasible) == len(done)
        latencies = [t["latency_cycles"] for t in feasible]
        rows.append({
            "label": key[0], **dict(zip(PLACE_KEYS, key[1:])),
            "seeds": len(members), "failed": len(members) - len(done),
            "latency_cycles": statistics.median(latencies) if complete else None,
            "latency_min": min(latencies) if complete else None,
            "latency_max": max(latencies) if complete else None,
            "x_bound": _median([t.get("ratio_to_compute_bound") for t in feasible], complete),
            "x_optimum": _median([t.get("ratio_to_optimum") for t in feasible], complete),
            "feasible_layers": min((t.get("layers", 0) - len(t.get("infeasible_layers") or [])
                                    for t in totals), default=0),
            "layers": max((t.get("layers", 0) for t in totals), default=0),
            "wall_s": round(sum(float(j.get("wall_s") or 0.0) for j in members), 1),
            **A.arm_area([A.job_area(j) for j in done], platforms)})
    return sorted(rows, key=lambda r: (r["model"], r["system"], r["platform"],
                                       r["latency_cycles"] if r["latency_cycles"] is not None
                                       else math.inf, r["label"]))


def _median(values: list[float | None], complete: bool) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if complete and known and len(known) == len(values) else None


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The summary as a text table: one line per row, the columns that vary among the rows'
    model and platform only, latency with its range over the seeds; where some row is
    co-design, the area (mm^2: a design's median, range and budget; a fixed platform's)."""
    shown = [k for k in PLACE_KEYS if k == "system" or len({r[k] for r in rows}) > 1]
    with_area = any(r.get("codesign") for r in rows)
    head = ["arm", *shown, "seeds", "latency (cycles)", *(["area (mm^2)"] if with_area else []),
            "x bound", "x optimum", "feasible layers", "wall s"]
    lines = [head]
    for r in rows:
        if r["latency_cycles"] is None:
            latency = "failed" if r["failed"] == r["seeds"] else "infeasible"
        else:
            latency = f"{r['latency_cycles']:,.0f}"
            if r["latency_max"] != r["latency_min"]:
                latency += f" ({r['latency_min']:,.0f}-{r['latency_max']:,.0f})"
        area = ([A.area_cell(r.get("area_mm2"), r.get("area_budget_mm2"),
                             (r.get("area_min"), r.get("area_max")))] if with_area else [])
        lines.append([r["label"], *(r[k] for k in shown), str(r["seeds"]), latency, *area,
                      ratio(r["x_bound"]), ratio(r["x_optimum"]),
                      f"{r['feasible_layers']}/{r['layers']}", f"{r['wall_s']:,.1f}"])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    left = len(shown) + 1
    return "\n".join("  ".join(str(c).ljust(w) if i < left else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(line, widths))).rstrip()
                     for line in lines)


def summary_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The rows as MLflow metrics of the sweep's parent run: ``<figure>/<arm>``, e.g.
    ``latency_cycles/gamma.s2.edge``, for latency, x_bound, x_optimum, feasible_layers and
    wall_s, and ``area_mm2`` where known (a co-design arm's median design; a fixed arm's
    platform, where a co-design job recorded it) (the model and platform in the arm name only
    where they vary)."""
    shown = [k for k in PLACE_KEYS if k == "system" or len({r[k] for r in rows}) > 1]
    out: dict[str, float] = {}
    for r in rows:
        arm = metric_safe(".".join([r["label"], *(str(r[k]) for k in shown)]))
        for figure in ("latency_cycles", "x_bound", "x_optimum", "feasible_layers", "wall_s",
                       "area_mm2"):
            if r.get(figure) is not None:
                out[f"{figure}/{arm}"] = float(r[figure])
    return out


def metric_safe(text: str) -> str:
    """``text`` with every character MLflow refuses in a metric name (other than letters,
    digits, ``_ - . / space``) replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "_-. " else "_" for c in text)


def write_summary(sweep_dir: Path, rows: list[dict[str, Any]], text: str) -> None:
    """``sweep_summary.txt`` and ``sweep_summary.json`` in the sweep folder."""
    write_text_atomic(sweep_dir / SUMMARY_TEXT, text + "\n")
    write_text_atomic(sweep_dir / SUMMARY_JSON, json.dumps({"rows": rows}, indent=1) + "\n")
