#!/usr/bin/env python
"""Reproduce the paper's experiments and write them beside the paper's own numbers.

Usage: python scripts/reproduce_paper.py [--quick] [--out DIR | --update-report]
                                         [--reuse | --no-reuse] [--parts fig6,table5,...]
                                         [--uri TRACKING_URI] [--plan FILE] [--sweep-dir DIR]
                                         [--dry-run]

Runs every part of scripts/paper_plan.yaml (Figure 6, Figure 6 edge in paper mode and with each
of paper mode's three changes alone, Table 5 and Table 5 in paper mode, Figure 8, Figure 9,
Table 6), each as ``python run.py -m experiment=NAME ...`` subprocesses on the joblib launcher
(both cores), or reuses its jobs from MLflow: a job whose whole config (every setting but
tracking, parallel, resume, optima and the label) equals a finished run's params in the
experiment's MLflow experiment is not run again (``--no-reuse`` runs every job anew). The missing
jobs of a part are grouped into as few sweeps (grids) as cover exactly them. ``--quick`` applies
the plan's ``quick`` settings (one seed, fewer layers, systems, models and samples).

Writes a new run folder, outputs/paper/<date>_<time>/ (or ``--out DIR``; the committed report
reports/paper/ only with ``--update-report``): README.md with every table beside the paper's
numbers (scripts/paper_reference.yaml), GAMMA with our defaults beside GAMMA in paper mode, and
the figures fig6.png, fig6_paper.png, table5.png, fig8.png, fig9.png, table6.png; the sweeps'
folders go to the run folder's sweeps/ (or ``--sweep-dir``). Units: cycles (latency), nJ
(energy), mW (power); factors are "x lower than the other side" (> 1: GAMMA better). Prints
where it wrote and the total time. Exit 1 when a part cannot be planned (e.g. an unknown
setting); parts whose jobs failed are reported as missing in README.md.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]

from gamma.analysis import compare
from gamma.tracking import reader, store, writer as tracking
from gamma.errors import GammaError

PLAN = ROOT / "scripts" / "paper_plan.yaml"
REFERENCE = ROOT / "scripts" / "paper_reference.yaml"
#: The committed report, written only with ``--update-report``.
REPORT = ROOT / "reports" / "paper"
#: Where each call's run folder goes (``<OUTPUTS>/<date>_<time>``), as Hydra's outputs/.
OUTPUTS = store.DEFAULT_OUTPUTS / "paper"
#: Config entries that never make two jobs different (where and how a job runs and is logged,
#: where the optima cache lives).
NOT_COMPARED = ("tracking", "parallel", "resume", "label", "hydra", "optima")
OPTIMIZERS = ("gamma", "stdga", "pso", "cma", "de", "tbpsa", "bo", "random")
FIXED_ARMS = ("nvdla", "eyeriss", "shidiannao")


# --- the plan -----------------------------------------------------------------------------------
@dataclass
class Job:
    """One job of a part: its overrides (key -> Hydra value) and, once found, its MLflow run."""

    part: str
    experiment: str  # conf/experiment/<experiment>.yaml
    values: dict[str, str]
    expected: dict[str, str] = field(default_factory=dict)  # flattened config (MLflow params)
    mlflow_experiment: str = ""
    run: dict[str, Any] | None = None

    def overrides(self) -> list[str]:
        return [f"experiment={self.experiment}", *(f"{k}={v}" for k, v in self.values.items())]


def split_values(text: str) -> list[str]:
    """A Hydra sweep value ``a,b,[1,2]`` as its choices (commas inside brackets kept)."""
    out, depth, cur = [], 0, ""
    for ch in str(text):
        depth += {"[": 1, "(": 1, "{": 1, "]": -1, ")": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()] if cur.strip() or not out else out


def hydra_value(value: Any) -> str:
    """A plan value as a Hydra override value (lists as ``[1,2]``, null as ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class Composer:
    """Hydra's compose API on conf/, for the experiments' grids and each job's config."""

    def __init__(self) -> None:
        from hydra import initialize_config_dir

        self._ctx = initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None)
        self._ctx.__enter__()

    def close(self) -> None:
        self._ctx.__exit__(None, None, None)

    def compose(self, overrides: list[str], hydra: bool = False) -> Any:
        from hydra import compose
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        try:
            return compose("config", overrides=overrides, return_hydra_config=hydra)
        except (HydraException, OmegaConfBaseException) as e:
            raise GammaError(f"{' '.join(overrides)}: {str(e).splitlines()[0]}") from None

    #: What :meth:`grid` and :meth:`expected` found, by their arguments, for this process (a
    #: compose takes ~0.2-0.4 s; the configs in conf/ do not change while it runs).
    _found: dict[tuple[str, ...], Any] = {}

    def grid(self, experiment: str) -> dict[str, str]:
        """The sweep grid of conf/experiment/<experiment>.yaml (key -> comma-separated values)."""
        key = ("grid", experiment)
        if key not in self._found:
            cfg = self.compose([f"experiment={experiment}"], hydra=True)
            self._found[key] = {str(k): str(v) for k, v in (cfg.hydra.sweeper.params or {}).items()}
        return dict(self._found[key])

    def expected(self, job: Job) -> tuple[dict[str, str], str]:
        """The job's flattened config as MLflow logs it (without :data:`NOT_COMPARED`), and its
        MLflow experiment."""
        from omegaconf import OmegaConf

        key = ("job", *job.overrides())
        if key not in self._found:
            plain = OmegaConf.to_container(self.compose(job.overrides()), resolve=True)
            flat = store.flatten({k: v for k, v in plain.items() if k not in NOT_COMPARED})
            flat = {k: v for k, v in flat.items() if k not in tracking.NOT_PARAMS}
            self._found[key] = (flat, store.experiment_name(plain))
        flat, experiment = self._found[key]
        return dict(flat), experiment


def plan_jobs(plan: dict[str, Any], quick: bool, parts: list[str], composer: Composer) -> list[Job]:
    """Every job of the chosen parts: the experiment's grid, the part's ``set``, then (quick)
    ``quick.all`` and ``quick.<part>``, expanded to one job per combination."""
    jobs = []
    for part in parts:
        spec = plan["parts"][part]
        grid = composer.grid(spec["experiment"])
        settings = {**(spec.get("set") or {})}
        if quick:
            settings.update((plan.get("quick") or {}).get("all") or {})
            settings.update((plan.get("quick") or {}).get(part) or {})
        for key, value in settings.items():
            grid[key] = hydra_value(value)
        keys = list(grid)
        choices = [split_values(grid[k]) if k != "layers" else [grid[k]] for k in keys]
        for combo in itertools.product(*choices):
            job = Job(part, spec["experiment"], dict(zip(keys, combo)))
            job.expected, job.mlflow_experiment = composer.expected(job)
            jobs.append(job)
    return jobs


# --- reuse and runs -----------------------------------------------------------------------------
def finished_runs(experiment: str, uri: str | None) -> list[dict[str, Any]]:
    """The finished job runs of an MLflow experiment ([] if it does not exist yet)."""
    try:
        runs = reader.experiment_runs(experiment, uri)
    except GammaError:
        return []
    return [r for r in runs if r["status"] == "FINISHED"]


def match_runs(jobs: list[Job], uri: str | None, since_ms: int = 0) -> None:
    """Give every job the newest finished run (started at or after ``since_ms``) whose params
    hold the job's config."""
    cache: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        if job.mlflow_experiment not in cache:
            cache[job.mlflow_experiment] = finished_runs(job.mlflow_experiment, uri)
        same = [r for r in cache[job.mlflow_experiment] if (r["start_time"] or 0) >= since_ms
                and all(r["params"].get(k) == v for k, v in job.expected.items())]
        job.run = max(same, key=lambda r: r["start_time"] or 0) if same else None


def boxes(jobs: list[Job]) -> list[dict[str, list[str]]]:
    """Grids (key -> values) whose products are exactly ``jobs``: two grids that differ in one
    key's values are merged, until none do."""
    keys = list(jobs[0].values) if jobs else []
    if jobs and all(list(j.values) == keys for j in jobs):  # a whole grid (the usual case): one
        grid = {k: list(dict.fromkeys(j.values[k] for j in jobs)) for k in keys}
        if math.prod(len(v) for v in grid.values()) == len({tuple(j.values.values()) for j in jobs}):
            return [grid]
    out = [{k: [v] for k, v in j.values.items()} for j in jobs]
    merged = True
    while merged:
        merged = False
        for a, b in itertools.combinations(range(len(out)), 2):
            x, y = out[a], out[b]
            if x.keys() != y.keys():
                continue
            diff = [k for k in x if set(x[k]) != set(y[k])]
            if len(diff) == 1:
                x[diff[0]] += [v for v in y[diff[0]] if v not in x[diff[0]]]
                del out[b]
                merged = True
                break
    return out


def grid_overrides(box: dict[str, list[str]]) -> list[str]:
    """A grid as command-line overrides: ``optimizer=gamma,cma``, ``seed=0``."""
    return [f"{k}={','.join(v)}" for k, v in box.items()]


def grid_text(box: dict[str, list[str]]) -> str:
    return " ".join(grid_overrides(box))


def run_sweep(experiment: str, box: dict[str, list[str]], sweep_dir: Path, uri: str | None,
              launcher: str) -> int:
    """``python run.py -m experiment=NAME key=v1,v2 ...`` on Hydra launcher ``launcher``
    (joblib: both cores); its output goes to ``sweep_dir``/sweep.log. Returns the exit code."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / "run.py"), "-m", f"experiment={experiment}",
           *grid_overrides(box), f"hydra.sweep.dir={sweep_dir}",
           f"hydra/launcher={launcher}"]
    if uri:
        cmd.append(f"tracking.uri={uri}")
    with open(sweep_dir / "sweep.log", "w", encoding="utf-8") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        return subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode


def run_missing(jobs: list[Job], sweep_root: Path, uri: str | None, launcher: str = "joblib",
                at_once: int = 1) -> int:
    """Run the jobs without a run as the fewest exact grids per part, ``at_once`` sweeps at a
    time; returns how many jobs were run."""
    from concurrent.futures import ThreadPoolExecutor

    todo = [j for j in jobs if j.run is None]
    by_part: dict[str, list[Job]] = defaultdict(list)
    for j in todo:
        by_part[j.part].append(j)
    sweeps = [(part, n, mine[0].experiment, box) for part, mine in by_part.items()
              for n, box in enumerate(boxes(mine))]

    def one(part: str, n: int, experiment: str, box: dict[str, list[str]]) -> None:
        size, t0, folder = math.prod(len(v) for v in box.values()), time.time(), sweep_root / f"{part}_{n}"
        print(f"{part}: running {size} jobs ({grid_text(box)})", flush=True)
        code = run_sweep(experiment, box, folder, uri, launcher)
        print(f"{part}: {size} jobs in {time.time() - t0:.0f} s"
              + (f" (exit code {code}, see {folder / 'sweep.log'})" if code else ""), flush=True)

    with ThreadPoolExecutor(max_workers=max(1, at_once)) as pool:
        list(pool.map(lambda s: one(*s), sweeps))
    return len(todo)


# --- reading runs -------------------------------------------------------------------------------
class Runs:
    """The matched runs of the jobs, with their end-to-end totals (compare.py's) and, on
    demand, their results.json."""

    def __init__(self, jobs: list[Job], uri: str | None) -> None:
        self.jobs, self.uri = jobs, uri
        self._results: dict[str, dict[str, Any] | None] = {}
        for j in jobs:
            if j.run is not None and "totals" not in j.run:
                j.run["totals"] = compare.totals_from_metrics(j.run["metrics"])
                if j.run["totals"] is None and self.results(j):
                    j.run["totals"] = compare.totals_from_results(self.results(j))
                j.run["arm"] = compare.describe(j.run)

    def results(self, job: Job) -> dict[str, Any] | None:
        if job.run is None:
            return None
        rid = job.run["run_id"]
        if rid not in self._results:
            self._results[rid] = reader.run_results(rid, self.uri)
        return self._results[rid]

    def part(self, name: str) -> list[Job]:
        return [j for j in self.jobs if j.part == name]

    def done(self, name: str) -> list[Job]:
        return [j for j in self.part(name) if j.run is not None and j.run.get("totals")]


def select(jobs: list[Job], **where: str) -> list[Job]:
    """The jobs whose values (or config) match ``where`` (key -> value)."""
    return [j for j in jobs if all(j.values.get(k, j.expected.get(k)) == v for k, v in where.items())]


def med(jobs: list[Job], field_: str) -> float:
    """Median over seeds of an end-to-end total (``latency``, ``energy``, ``cost``,
    ``latency_feasible``, ``infeasible``); NaN without runs."""
    return compare.median([j.run["totals"][field_] for j in jobs])


def value_of(job: Job, key: str) -> str:
    return job.values.get(key, job.expected.get(key, "?"))


def n_layers(n: float) -> str:
    """``1 layer``, ``2.5 layers`` (a median over seeds)."""
    return f"{n:g} layer" + ("" if n == 1 else "s")


def fmt_x(v: float | None) -> str:
    """A factor for people: 1,035x, 36.2x, 1.05x, 0.64x, 0.0062x; "-" where there is none."""
    if v is None or math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf"
    if v >= 100 or float(v).is_integer():
        return f"{v:,.0f}x"
    if v >= 10:
        return f"{v:.1f}x"
    if 0.99 <= v < 1.01:
        return f"{v:.3f}x"  # near 1: the third decimal is the difference
    if v >= 0.01:
        return f"{v:.2f}x"
    return f"{v:.2g}x" if v > 0 else "0x"


def fmt_range(lo: float, hi: float) -> str:
    """A range of factors: ``209x-1,035x``, or one factor where both ends agree."""
    return fmt_x(lo) if lo == hi else f"{fmt_x(lo)}-{fmt_x(hi)}"


def paper_range(ref: float | list[float] | None) -> tuple[float, float] | None:
    """The paper's value as (low, high): a number is both ends; None where it gives none."""
    if ref is None:
        return None
    if isinstance(ref, (list, tuple)):
        return float(min(ref)), float(max(ref))
    return float(ref), float(ref)


def vs_paper(ours: float, ref: float | list[float] | None) -> str:
    """Our factor against the paper's (a number or a range): "within the paper's range", or
    how many times lower or higher ours is ("199x-986x lower", "36.2x higher")."""
    rng = paper_range(ref)
    if rng is None:
        return "the paper gives none"
    if ours is None or not math.isfinite(ours) or ours <= 0:
        return "-"
    lo, hi = rng
    if lo <= ours <= hi:
        return "within the paper's range" if lo < hi else "equal"
    if ours < lo:
        return f"{fmt_range(lo / ours, hi / ours)} lower"
    return f"{fmt_range(ours / hi, ours / lo)} higher"


def fmt_num(v: float | None, unit: str = "") -> str:
    """A quantity for people: thousands separators from 1,000 up, 3 significant digits below
    (``163,300,000``, ``238.7``, ``0.0123``); "-" where there is none."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "infeasible"
    text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"
    return f"{text} {unit}".rstrip()


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def plt_module() -> Any:
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log_axis(ax: Any, label: Callable[[float], str]) -> None:
    """A log y axis with ticks at 1, 2 and 5 per decade, each labelled by ``label`` (no
    scientific notation), no minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: label(v)))
    ax.yaxis.set_minor_formatter(NullFormatter())


def tick_num(v: float) -> str:
    """An axis tick: ``20,000``, ``200``, ``0.5``."""
    return f"{v:,.0f}" if v >= 10 else f"{v:g}"


def mark_at_bottom(ax: Any, x: float, text: str) -> None:
    """``text`` above the x axis at data position ``x`` (for a bar a log axis cannot draw)."""
    ax.text(x, 0.02, text, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8,
            color="dimgrey")


def missing_note(runs: Runs, part: str) -> list[str]:
    """A line on the part's jobs without a finished run, with the errors MLflow holds."""
    lost = [j for j in runs.part(part) if j.run is None or not j.run.get("totals")]
    if not lost:
        return []
    names = "; ".join(" ".join(f"{k}={v}" for k, v in j.values.items()
                               if k not in ("budget", "layers", "tracking.experiment")) for j in lost[:6])
    more = f" and {len(lost) - 6} more" if len(lost) > 6 else ""
    return [f"Missing ({len(lost)} of {len(runs.part(part))} jobs without a finished run): {names}{more}.", ""]


def not_done(runs: Runs, part: str) -> list[str]:
    """The part's settings line, or why it has nothing to show."""
    if not runs.part(part):
        return [f"Not run this time (`--parts` left out {part}).", ""]
    if not runs.done(part):
        return [settings_line(runs.part(part)), "", "No finished runs.", "", *missing_note(runs, part)]
    return [settings_line(runs.part(part)), ""]


def settings_line(jobs: list[Job]) -> str:
    """Budget, layers and seeds of a part's jobs."""
    if not jobs:
        return ""
    budgets = sorted({value_of(j, "budget") for j in jobs}, key=int)
    layers = sorted({value_of(j, "layers") for j in jobs})
    seeds = sorted({value_of(j, "seed") for j in jobs}, key=int)
    lay = "every layer" if layers == ["None"] else f"layers {', '.join(layers)}"
    return (f"Settings: {', '.join(budgets)} samples per unique layer, {lay}, "
            f"seeds {', '.join(seeds)}; medians over seeds.")


# --- Figure 6 and Figure 8: optimizers ----------------------------------------------------------
def optimizer_rows(jobs: list[Job], total: str) -> list[dict[str, Any]]:
    """Per system and platform: each optimizer's median ``total`` (latency or energy) and
    GAMMA's factor over the best other optimizer (NaN where either is infeasible)."""
    rows = []
    for system, platform in sorted({(value_of(j, "system.name"), value_of(j, "platform.name"))
                                    for j in jobs}):
        mine = [j for j in jobs if (value_of(j, "system.name"), value_of(j, "platform.name")) ==
                (system, platform)]
        per = {o: select(mine, **{"optimizer.name": o}) for o in OPTIMIZERS}
        medians = {o: med(js, total) for o, js in per.items() if js}
        bad = {o: med(js, "infeasible") for o, js in per.items() if js}
        others = {o: v for o, v in medians.items() if o != "gamma" and math.isfinite(v)}
        best = min(others, key=others.get) if others else None
        g = medians.get("gamma", math.nan)
        factor = compare.ratio_to(others[best], g) if best and math.isfinite(g) else math.nan
        rows.append({"system": system, "platform": platform, "medians": medians,
                     "infeasible": bad, "best_other": best, "factor": factor})
    return rows


def fmt_vs(v: float) -> str:
    """A ratio to GAMMA as a percentage difference: ``+5.9 %``, ``-35.8 %``; "-" without one."""
    return "-" if not math.isfinite(v) else f"{round(100 * (v - 1), 1) + 0.0:+.1f} %"  # no "-0.0"


def optimizer_panel(ax: Any, r: dict[str, Any], what: str, ref: tuple[float, float] | None) -> None:
    """One system and platform: each optimizer's median over GAMMA's (log axis, labelled), the
    paper's range for the best other optimizer as a band, infeasible optimizers named."""
    g = r["medians"].get("gamma", math.nan)
    finite = {o: v for o, v in r["medians"].items() if math.isfinite(v)}
    base = g if math.isfinite(g) else min(finite.values(), default=math.nan)
    names = sorted(r["medians"], key=lambda o: (r["medians"][o], o))
    x = np.arange(len(names))
    ratios = [r["medians"][o] / base if math.isfinite(r["medians"][o]) else math.nan for o in names]
    bars = ax.bar(x, [v if math.isfinite(v) else 0 for v in ratios], 0.6,
                  color=["C3" if o == "gamma" else "C0" for o in names])
    ax.bar_label(bars, [fmt_x(v) if math.isfinite(v) else "" for v in ratios], fontsize=8, padding=2)
    for i, (o, v) in enumerate(zip(names, ratios)):
        if not math.isfinite(v):
            mark_at_bottom(ax, i, f"infeasible\n({n_layers(r['infeasible'][o])})")
    log_axis(ax, fmt_x)
    if ref:
        ax.axhspan(ref[0], ref[1], color="grey", alpha=0.3,
                   label=f"paper: best other {fmt_range(*ref)} GAMMA's {what}\n(its range across models)")
        ax.legend(fontsize=8, loc="upper left")
    else:
        ax.text(0.02, 0.97, "the paper gives no value here", transform=ax.transAxes, fontsize=8, va="top")
    top = max([v for v in ratios if math.isfinite(v)] + ([ref[1]] if ref else []) + [1.0])
    low = min([v for v in ratios if math.isfinite(v) and v > 0] + [1.0])
    ax.set_ylim(low / 1.5, top * (8 if ref else 1.5))
    ax.set_xticks(x, names, fontsize=9)
    ax.set_ylabel(f"median {what} / GAMMA's (log)" if math.isfinite(g) else
                  f"median {what} / the lowest (GAMMA infeasible)", fontsize=9)
    ours = (f"ours: best other {fmt_x(r['factor'])} GAMMA's" if math.isfinite(r["factor"]) else
            "ours: no factor (GAMMA or every other infeasible)")
    ax.set_title(f"{r['system']} {r['platform']}; {ours}", fontsize=9)


def optimizer_figure(rows: list[dict[str, Any]], what: str, title: str, path: Path,
                     reference: Callable[[str, str], list[float] | None]) -> Path:
    """One panel per system and platform (:func:`optimizer_panel`)."""
    plt = plt_module()
    fig, axes = plt.subplots(1, len(rows), figsize=(max(6.0, 5.2 * len(rows)), 4.6), squeeze=False)
    for ax, r in zip(axes[0], rows):
        optimizer_panel(ax, r, what, paper_range(reference(r["system"], r["platform"])))
    fig.suptitle(title if len(rows) > 1 else title.replace(": ", ":\n", 1), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def optimizer_table(rows: list[dict[str, Any]], total: str, unit: str,
                    reference: Callable[[str, str], list[float] | None]) -> list[str]:
    head = ["system", "platform", f"GAMMA {total} ({unit})", "best other", f"its {total}",
            "GAMMA's factor", "paper's factor", "ours vs the paper", "infeasible layers (median)"]
    out = []
    for r in rows:
        ref = reference(r["system"], r["platform"])
        g = r["medians"].get("gamma", math.nan)
        best = r["best_other"]
        bad = ", ".join(f"{o} {v:g}" for o, v in sorted(r["infeasible"].items()) if v) or "none"
        out.append([r["system"], r["platform"], compare.fmt(g), best or "(all others infeasible)",
                    compare.fmt(r["medians"][best]) if best else "-", fmt_x(r["factor"]),
                    fmt_range(*paper_range(ref)) if ref else "the paper gives none",
                    vs_paper(r["factor"], ref), bad])
    return md_table(head, out)


def per_optimizer_table(rows: list[dict[str, Any]], unit: str) -> list[str]:
    """Every optimizer's median and its difference to GAMMA's, per system and platform."""
    head = ["optimizer", *(f"{r['system']} {r['platform']}" for r in rows)]
    out = []
    for o in OPTIMIZERS:
        cells = []
        for r in rows:
            v, g = r["medians"].get(o), r["medians"].get("gamma", math.nan)
            if v is None:
                cells.append("-")
            elif math.isinf(v):
                cells.append(f"infeasible ({n_layers(r['infeasible'][o])})")
            else:
                cells.append(f"{compare.fmt(v)} ({fmt_vs(compare.ratio_to(v, g))})")
        if any(c != "-" for c in cells):
            out.append([o, *cells])
    return [f"Median end-to-end ({unit}) and, in brackets, its difference to GAMMA's median:", "",
            *md_table(head, out)]


def below_bound_share(runs: Runs, jobs: list[Job], arm_of: Callable[[Job], str]) -> dict[str, tuple[int, int]]:
    """Per arm: (best per-layer mappings below the compute bound, feasible layers) over its
    runs, from results.json's per-layer ``below_bound``."""
    share: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for j in jobs:
        res = runs.results(j) or {}
        for layer in res.get("layers", []):
            if layer.get("feasible") and layer.get("best"):
                share[arm_of(j)][1] += 1
                share[arm_of(j)][0] += bool(layer.get("below_bound"))
    return {k: (v[0], v[1]) for k, v in share.items()}


def share_lines(share: dict[str, tuple[int, int]], what: str) -> list[str]:
    if not share:
        return [f"(no paper-mode runs with per-layer `below_bound` for {what})", ""]
    rows = [[arm, f"{n} of {total}", f"{100 * n / total:.0f} %" if total else "-"]
            for arm, (n, total) in sorted(share.items())]
    return [f"Share of the best per-layer mappings below the compute bound in paper mode ({what}; "
            "every layer of every run, duplicates counted):", "",
            *md_table(["arm", "layers below the bound", "share"], rows)]


def section_fig6(runs: Runs, ref: dict[str, Any], out: Path) -> tuple[list[str], list[Path]]:
    lines = ["## Figure 6: latency per optimizer, system and platform (ResNet-18)", ""]
    files = []
    for part, title in (("fig6", "our defaults (divisor inner tiles, compute-bound and MAC-count guard)"),
                        ("fig6_paper", "paper mode (`paper_mode=true`: any inner tiles, no guard, GAMMA "
                                      "without the structure mutation)")):
        jobs = runs.done(part)
        lines += [f"### {title}", "", *not_done(runs, part)]
        if not jobs:
            continue
        rows = optimizer_rows(jobs, "latency")

        def fig6_ref(system: str, platform: str) -> list[float] | None:
            return (ref.get("fig6", {}).get(system) or {}).get(platform)

        lines += ["GAMMA's factor = the best other optimizer's median end-to-end latency over GAMMA's "
                  "(> 1: GAMMA faster). The paper's factor is its range across models.", "",
                  *optimizer_table(rows, "latency", "cycles", fig6_ref),
                  *per_optimizer_table(rows, "cycles")]
        f = optimizer_figure(rows, "latency", f"Figure 6 (ResNet-18), {title.split(' (')[0]}: "
                             "end-to-end latency per optimizer over GAMMA's, the paper's range as a band",
                             out / f"{part}.png", fig6_ref)
        files.append(f)
        lines += [f"![{part}]({f.name})", ""]
        if part == "fig6_paper":
            lines += share_lines(below_bound_share(runs, jobs, lambda j: value_of(j, "optimizer.name")),
                                 "Figure 6 edge")
        lines += missing_note(runs, part)
    return lines, files


def section_fig8(runs: Runs, ref: dict[str, Any], out: Path) -> tuple[list[str], list[Path]]:
    lines = ["## Figure 8: energy per optimizer (objective=energy, ResNet-18, S2)", "",
             *not_done(runs, "fig8")]
    jobs = runs.done("fig8")
    if not jobs:
        return lines, []
    rows = optimizer_rows(jobs, "energy")
    lines += ["GAMMA's factor = the best other optimizer's median end-to-end energy over GAMMA's "
              "(> 1: GAMMA lower). The paper's factor is its range across models.", "",
              *optimizer_table(rows, "energy", "nJ", lambda s, p: ref.get("fig8", {}).get(p)),
              *per_optimizer_table(rows, "nJ")]
    f = optimizer_figure(rows, "energy", "Figure 8 (ResNet-18, objective=energy): end-to-end energy per "
                         "optimizer over GAMMA's, the paper's range as a band", out / "fig8.png",
                         lambda s, p: ref.get("fig8", {}).get(p))
    return lines + [f"![fig8]({f.name})", "", *missing_note(runs, "fig8")], [f]


# --- GAMMA: our defaults against paper mode ----------------------------------------------------
#: What paper mode changes (gamma/search/rules.py, GammaOptimizer.adapt_settings): the setting,
#: our default, paper mode's value, the part that measures the change alone, and why it changes
#: GAMMA's result, in one sentence.
MODE_CHANGES = (
    ("map space: inner tiles (`mapspace.inner_tiles`)", "divisors of the parent tile",
     "any value up to the parent tile", "fig6_any",
     "The map space grows by every tile that does not divide its parent, and such a tile leaves a "
     "partial last round in which PEs idle, so the same budget is spread over more, mostly worse "
     "mappings; it is also the only way into MAESTRO's edge-tile undercounts, which the guard rejects."),
    ("guard (`guard`)", "on: rejects mappings reported below the compute bound, with a wrong MAC "
     "count or below their busiest PE's work", "off: keeps them", "fig6_noguard",
     "It only adds mappings, at a reported latency below what they take (docs/undercounts.md), so "
     "by itself it can lower GAMMA's total but not raise it beyond the noise of one search; in "
     "our divisor map space such mappings are rare."),
    ("GAMMA's operators (`optimizer.operators.structure.enabled`)",
     "the reference code's five and our structure mutation", "the reference code's five",
     "fig6_nostructure",
     "Without the structure mutation (docs/gamma-algorithm.md, 2.8) no operator redraws a "
     "genome's parallel dims and cluster sizes together, so a population that converged on a poor "
     "spatial structure stays on it (ResNet-18 layer 17 on S2 edge: 1.181x the optimum instead "
     "of 1.020x)."),
)
MODE_PARTS = ("fig6", "fig6_any", "fig6_noguard", "fig6_nostructure", "fig6_paper")


def gamma_edge_latency(runs: Runs, part: str) -> dict[str, float]:
    """Per system: GAMMA's median end-to-end latency (cycles) on edge in ``part``."""
    jobs = select(runs.done(part), **{"optimizer.name": "gamma", "platform.name": "edge"})
    return {sys_: med(select(jobs, **{"system.name": sys_}), "latency")
            for sys_ in sorted({value_of(j, "system.name") for j in jobs})}


def with_change(value: float, base: float) -> str:
    """``2,350,000 (+6.1 %)``: a total and its difference to ``base``."""
    if not math.isfinite(value):
        return compare.fmt(value)
    return f"{compare.fmt(value)} ({fmt_vs(compare.ratio_to(value, base))})" if math.isfinite(base) \
        else compare.fmt(value)


def below_bound_cell(runs: Runs, jobs: list[Job]) -> str:
    """``1 of 4 layers`` below the compute bound among the jobs' best per-layer mappings."""
    n, total = below_bound_share(runs, jobs, lambda j: "all").get("all", (0, 0))
    return f"{n} of {total} layers" if total else "-"


def modes_changes_table(runs: Runs, lat: dict[str, dict[str, float]]) -> list[str]:
    """One row per change of paper mode: both values, GAMMA's latency with it alone, why."""
    rows = []
    for setting, ours, theirs, part, why in MODE_CHANGES:
        if not runs.part(part):
            alone = "not run (`--parts`)"
        else:
            alone = "; ".join(f"{sys_}: {with_change(v, lat['fig6'].get(sys_, math.nan))}"
                              for sys_, v in lat[part].items()) or "no finished runs"
        rows.append([setting, ours, theirs, alone, why])
    return md_table(["setting", "our default", "paper mode", "GAMMA with this change alone "
                     "(Figure 6 edge, cycles; vs our defaults)", "why it changes the result"], rows)


def modes_side_by_side(runs: Runs, lat: dict[str, dict[str, float]]) -> list[list[str]]:
    """Rows of GAMMA's totals with our defaults and in paper mode: Figure 6 edge per system,
    Table 5 per model and platform (latency, and energy from GAMMA with objective=energy)."""
    rows = []
    paper_jobs = select(runs.done("fig6_paper"), **{"optimizer.name": "gamma"})
    for sys_, v in lat["fig6_paper"].items():
        d = lat["fig6"].get(sys_, math.nan)
        rows.append([f"Figure 6, ResNet-18, {sys_} edge: latency (cycles)", compare.fmt(d),
                     compare.fmt(v), fmt_vs(compare.ratio_to(v, d)),
                     below_bound_cell(runs, select(paper_jobs, **{"system.name": sys_}))])
    ours, paper = runs.done("table5"), runs.done("table5_paper")
    for model, platform in sorted({(value_of(j, "model.name"), value_of(j, "platform.name")) for j in paper}):
        where = {"model.name": model, "platform.name": platform}
        for arm, total, what in (("gamma", "latency", "latency (cycles)"),
                                 ("gamma_energy", "energy", "energy (nJ, objective=energy)")):
            d, v = med(select(ours, arm=arm, **where), total), med(select(paper, arm=arm, **where), total)
            if math.isnan(v):
                continue
            rows.append([f"Table 5, {model}, S3 {platform}: {what}", compare.fmt(d), compare.fmt(v),
                         fmt_vs(compare.ratio_to(v, d)),
                         below_bound_cell(runs, select(paper, arm=arm, **where))])
    return rows


def layer_latencies(runs: Runs, jobs: list[Job]) -> dict[tuple[str, int], float]:
    """Per (system, layer index): the median over the jobs' runs of the best mapping's latency
    (cycles; inf where a run found no feasible mapping)."""
    got: dict[tuple[str, int], list[float]] = defaultdict(list)
    for j in jobs:
        for layer in (runs.results(j) or {}).get("layers", []):
            best = layer.get("best") if layer.get("feasible") else None
            got[(value_of(j, "system.name"), int(layer["index"]))].append(
                float(best["runtime_cycles"]) if best else math.inf)
    return {k: compare.median(v) for k, v in got.items()}


#: A layer is listed in the per-layer table when a column differs from the defaults by this much.
LAYER_DIFFERS = 0.01


def modes_layer_table(runs: Runs) -> list[str]:
    """GAMMA's best latency per layer (Figure 6 edge) with our defaults, each change alone and
    in paper mode: the layers where one of them differs from the defaults by >= 1 %."""
    cols = {part: layer_latencies(runs, select(runs.done(part), **{"optimizer.name": "gamma",
                                                                      "platform.name": "edge"}))
            for part in MODE_PARTS}
    rows = []
    for key in sorted(cols["fig6"]):
        base = cols["fig6"][key]
        vals = [cols[part].get(key, math.nan) for part in MODE_PARTS[1:]]
        if any(not math.isfinite(v) or abs(v / base - 1) >= LAYER_DIFFERS for v in vals if not math.isnan(v)):
            rows.append([key[0], str(key[1]), compare.fmt(base), *(with_change(v, base) for v in vals)])
    head = ["system", "layer", "our defaults", "inner tiles any", "no guard", "no structure mutation",
            "paper mode (all three)"]
    return [f"Per layer (best latency, cycles, medians over seeds; the layers where a column differs "
            f"from our defaults by {100 * LAYER_DIFFERS:.0f} % or more):", "",
            *(md_table(head, rows) if rows else ["None differs.", ""])]


def interaction_line(lat: dict[str, dict[str, float]]) -> list[str]:
    """Per system: the three changes' effects alone against paper mode's, in one sentence."""
    out = []
    for sys_, d in lat["fig6"].items():
        alone = [compare.ratio_to(lat[p].get(sys_, math.nan), d) for p in MODE_PARTS[1:4]]
        both = compare.ratio_to(lat["fig6_paper"].get(sys_, math.nan), d)
        if all(math.isfinite(v) for v in (*alone, both)):
            out.append(f"On {sys_} edge the three changes alone give {', '.join(fmt_vs(v) for v in alone)}, "
                       f"together (paper mode) {fmt_vs(both)}: "
                       + ("they compound, and the table per layer shows where."
                          if abs(both - 1) > sum(abs(v - 1) for v in alone) + 0.01 else
                          "about the sum of their parts."))
    return [" ".join(out), ""] if out else []


def section_modes(runs: Runs, ref: dict[str, Any], out: Path) -> tuple[list[str], list[Path]]:
    """GAMMA with our defaults beside GAMMA in paper mode, and each of paper mode's changes
    alone with the reason it changes the result."""
    lines = ["## GAMMA with our defaults and in paper mode (`paper_mode=true`)", "",
             "Paper mode is the paper's original setting on the same cost model "
             "(gamma/search/rules.py): it changes three things at once. Each row below gives "
             "both values, GAMMA's end-to-end latency on Figure 6's edge setting with that change "
             "alone (medians over seeds), and why the change moves the result. The paper gives no "
             "values for these settings (its numbers are all in paper mode).", ""]
    lat = {part: gamma_edge_latency(runs, part) for part in MODE_PARTS}
    alone = [j for part in MODE_PARTS[1:4] for j in runs.part(part)]
    lines += [settings_line(alone) if alone else "The changes alone were not run this time "
              "(`--parts` left out fig6_any, fig6_noguard, fig6_nostructure).", "",
              *modes_changes_table(runs, lat), *interaction_line(lat)]
    side = modes_side_by_side(runs, lat)
    lines += ["Side by side (medians over seeds; the last column counts paper mode's best per-layer "
              "mappings below the compute bound, i.e. MAESTRO undercounts that only paper mode keeps):",
              "", *(md_table(["experiment", "our defaults", "paper mode", "paper mode vs defaults",
                              "below the compute bound (paper mode)"], side) if side else
                    ["No paper-mode runs to compare.", ""])]
    if any(runs.done(part) for part in MODE_PARTS[1:]):
        lines += modes_layer_table(runs)
    for part in ("fig6_any", "fig6_noguard", "fig6_nostructure"):
        lines += missing_note(runs, part)
    return lines, []


# --- Table 5: GAMMA against the fixed dataflows -------------------------------------------------
def table5_rows(jobs: list[Job]) -> list[dict[str, Any]]:
    """Per model and platform: the arms' median latency and energy, the best fixed dataflow
    and GAMMA's factors over it (latency: arm gamma; energy: arm gamma_energy)."""
    rows = []
    for model, platform in sorted({(value_of(j, "model.name"), value_of(j, "platform.name")) for j in jobs}):
        mine = select(jobs, **{"model.name": model, "platform.name": platform})
        arms = {a: select(mine, arm=a) for a in ("gamma", "gamma_energy", *FIXED_ARMS)}
        lat = {a: med(js, "latency") for a, js in arms.items() if js}
        en = {a: med(js, "energy") for a, js in arms.items() if js}
        bad = {a: med(js, "infeasible") for a, js in arms.items() if js}
        fixed_lat = {a: lat[a] for a in FIXED_ARMS if math.isfinite(lat.get(a, math.inf))}
        fixed_en = {a: en[a] for a in FIXED_ARMS if math.isfinite(en.get(a, math.inf))}
        best_l = min(fixed_lat, key=fixed_lat.get) if fixed_lat else None
        best_e = min(fixed_en, key=fixed_en.get) if fixed_en else None
        g_en = en.get("gamma_energy", en.get("gamma", math.nan))
        rows.append({"model": model, "platform": platform, "latency": lat, "energy": en, "infeasible": bad,
                     "best_latency": best_l, "best_energy": best_e,
                     "latency_factor": compare.ratio_to(fixed_lat[best_l], lat.get("gamma", math.nan))
                     if best_l and math.isfinite(lat.get("gamma", math.nan)) else math.nan,
                     "energy_factor": compare.ratio_to(fixed_en[best_e], g_en)
                     if best_e and math.isfinite(g_en) else math.nan})
    return rows


def table5_lines(rows: list[dict[str, Any]], ref: dict[str, Any]) -> list[str]:
    head = ["model", "platform", "GAMMA latency (cycles)", *(f"{a} latency" for a in FIXED_ARMS),
            "GAMMA's latency factor", "paper", "ours vs the paper", "GAMMA energy (nJ, objective=energy)",
            *(f"{a} energy" for a in FIXED_ARMS), "GAMMA's energy factor", "paper", "ours vs the paper"]
    out = []
    for r in rows:
        paper = ref.get("table5", {}).get(r["model"], {})
        pl = (paper.get("latency") or {}).get(r["platform"])
        pe = (paper.get("energy") or {}).get(r["platform"])

        def cell(kind: str, arm: str) -> str:
            v = r[kind].get(arm)
            if v is None:
                return "-"
            if math.isinf(v):
                return f"infeasible ({n_layers(r['infeasible'][arm])})"
            star = "*" if arm == r[f"best_{kind}"] else ""
            return compare.fmt(v) + star

        ge = "gamma_energy" if "gamma_energy" in r["energy"] else "gamma"
        out.append([r["model"], r["platform"], cell("latency", "gamma"),
                    *(cell("latency", a) for a in FIXED_ARMS), fmt_x(r["latency_factor"]),
                    fmt_x(pl) if pl else "none", vs_paper(r["latency_factor"], pl),
                    cell("energy", ge), *(cell("energy", a) for a in FIXED_ARMS), fmt_x(r["energy_factor"]),
                    fmt_x(pe) if pe else "none", vs_paper(r["energy_factor"], pe)])
    return ["GAMMA's factor = the best fixed dataflow's (marked *) median end-to-end latency or energy "
            "over GAMMA's (> 1: GAMMA better); energy against GAMMA run with objective=energy.", "",
            *md_table(head, out)]


def table5_panel(ax: Any, sets: list[tuple[str, list[dict[str, Any]]]], ref: dict[str, Any],
                 platform: str, kind: str) -> None:
    """GAMMA's ``kind`` (latency or energy) factor over the best fixed dataflow per model on one
    platform: ours (each mode) beside the paper's, log axis, each bar labelled."""
    models = sorted({r["model"] for _, rows in sets for r in rows if r["platform"] == platform})
    x = np.arange(len(models))
    width = 0.8 / (len(sets) + 1)
    for n, (name, rows) in enumerate(sets):
        by = {r["model"]: r[f"{kind}_factor"] for r in rows if r["platform"] == platform}
        vals = [by.get(m, math.nan) for m in models]
        bars = ax.bar(x + n * width, [v if math.isfinite(v) else 0 for v in vals], width,
                      label=f"ours, {name}")
        ax.bar_label(bars, [fmt_x(v) if math.isfinite(v) else "" for v in vals], fontsize=8)
        for xi, m, v in zip(x + n * width, models, vals):
            if not math.isfinite(v):
                mark_at_bottom(ax, xi, "not run" if m not in by else "no factor\n(infeasible)")
    paper = [((ref.get("table5", {}).get(m) or {}).get(kind) or {}).get(platform, math.nan) for m in models]
    bars = ax.bar(x + len(sets) * width, [p if math.isfinite(p) else 0 for p in paper], width,
                  label="paper", color="grey")
    ax.bar_label(bars, [fmt_x(p) if math.isfinite(p) else "" for p in paper], fontsize=8)
    for xi, p in zip(x + len(sets) * width, paper):
        if not math.isfinite(p):
            mark_at_bottom(ax, xi, "the paper\ngives none")
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(x + width * len(sets) / 2, models, fontsize=9)
    log_axis(ax, fmt_x)
    top = max([v for _, rows in sets for r in rows for v in [r[f"{kind}_factor"]] if math.isfinite(v)]
              + [p for p in paper if math.isfinite(p)] + [1.0])
    ax.set_ylim(0.5, top * 3)
    ax.set_ylabel(f"best fixed dataflow's {kind} / GAMMA's (log)", fontsize=9)
    ax.set_title(f"Table 5, S3 {platform}: {kind}", fontsize=10)


def table5_figure(sets: list[tuple[str, list[dict[str, Any]]]], ref: dict[str, Any], path: Path) -> Path:
    """:func:`table5_panel` for latency (top row) and energy (bottom row) per platform."""
    plt = plt_module()
    platforms = sorted({r["platform"] for _, rows in sets for r in rows})
    cols = max(1, len(platforms))
    fig, axes = plt.subplots(2, cols, figsize=(6.5 * cols, 8.4), squeeze=False)
    for c, platform in enumerate(platforms):
        for row, kind in enumerate(("latency", "energy")):
            table5_panel(axes[row][c], sets, ref, platform, kind)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def section_table5(runs: Runs, ref: dict[str, Any], out: Path) -> tuple[list[str], list[Path]]:
    lines = ["## Table 5: GAMMA against the fixed dataflows (S3)", ""]
    sets = []
    for part, title in (("table5", "our defaults"), ("table5_paper", "paper mode (`paper_mode=true`)")):
        jobs = runs.done(part)
        lines += [f"### {title}", "", *not_done(runs, part)]
        if not jobs:
            continue
        rows = table5_rows(jobs)
        sets.append((title.split(" (")[0], rows))
        lines += table5_lines(rows, ref)
        if part == "table5_paper":
            lines += share_lines(below_bound_share(runs, jobs, lambda j: value_of(j, "arm")), "Table 5")
        lines += missing_note(runs, part)
    if not sets:
        return lines, []
    f = table5_figure(sets, ref, out / "table5.png")
    return lines + [f"![table5]({f.name})", ""], [f]


# --- Figure 9: convergence ----------------------------------------------------------------------
def convergence(runs: Runs, jobs: list[Job]) -> tuple[np.ndarray, np.ndarray] | None:
    """(samples per unique layer, median end-to-end best-so-far latency) over the jobs' runs."""
    res = [r for r in (runs.results(j) for j in jobs) if r]
    steps = sorted({s for r in res for layer in r["layers"] for s, _ in layer.get("history", [])})
    if not res or not steps:
        return None
    grid = np.array(steps)
    return grid, np.median(np.stack([compare.curve(r, grid) for r in res]), axis=0)


def section_fig9(runs: Runs, ref: dict[str, Any], out: Path) -> tuple[list[str], list[Path]]:
    lines = ["## Figure 9: convergence (GAMMA, S3 edge)", "", *not_done(runs, "fig9")]
    jobs = runs.done("fig9")
    if not jobs:
        return lines, []
    paper = ref.get("fig9", {})
    at_gen = int(paper.get("most_gain_within_generations", 20))
    plt = plt_module()
    fig, ax = plt.subplots(figsize=(10, 4.8))
    rows: list[list[str]] = []
    starts: list[float] = []  # generations of each curve's first and last point
    ends: list[float] = []
    for model in sorted({value_of(j, "model.name") for j in jobs}):
        mine = select(jobs, **{"model.name": model})
        got = convergence(runs, mine)
        if got is None:
            continue
        grid, curve = got
        pop = int(float(value_of(mine[0], "optimizer.population")))
        ok = np.isfinite(curve)
        if not ok.any():
            rows.append([model, "-", "infeasible", "-", "-", "-", "-"])
            continue
        p = (paper.get("latency_cycles") or {}).get(model)
        whole = value_of(mine[0], "layers") == "None"
        line = ax.step(grid[ok] / pop, curve[ok], where="post",
                       label=f"{model}, ours" + ("" if whole else " (a subset of layers)"))[0]
        if p:
            ax.axhline(p, color=line.get_color(), ls="--", lw=1,
                       label=f"{model}, paper (every layer): {fmt_num(p)}")
        else:
            ax.plot([], [], " ", label=f"{model}: the paper gives no value")
        gens = grid[-1] / pop
        starts.append(grid[ok][0] / pop)
        ends.append(gens)
        first, final = curve[ok][0], curve[ok][-1]
        upto = curve[(grid <= min(at_gen, gens) * pop) & ok]
        at = upto[-1] if len(upto) else math.nan
        gain = (first - at) / (first - final) if first > final else math.nan
        rows.append([model, f"{gens:g}", compare.fmt(final), compare.fmt(at),
                     f"{100 * gain:.0f} %" if math.isfinite(gain) else "-",
                     fmt_num(p) if p else "the paper gives none",
                     (fmt_x(final / p) if whole else "n/a (a subset of layers)") if p else "-"])
    ax.axvline(at_gen, color="grey", ls=":", lw=1,
               label=f"paper: most of the gain within {at_gen} generations")
    ax.set(xscale="log", xlabel="generations (samples per unique layer / population)",
           ylabel="end-to-end best latency so far (cycles)")
    if starts:
        ax.set_xlim(min(starts) / 1.5, max(ends + [at_gen]) * 1.5)
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    log_axis(ax, tick_num)
    ax.set_title("Figure 9: GAMMA on S3 edge, median over seeds; dashed: the paper's final latency",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    f = out / "fig9.png"
    fig.savefig(f, dpi=100)
    plt.close(fig)
    lines += ["End-to-end latency = the sum over layers of each layer's best so far (results.json "
              "history), median over seeds; gain share = the part of the whole search's improvement "
              "(from the first point where every layer is feasible) reached after "
              f"{at_gen} generations (or the generations run, if fewer). The paper's latency is "
              "for every layer of the model.", "",
              *md_table(["model", "generations run", "final latency (cycles)",
                         f"after {at_gen} generations", "gain share", "paper (cycles)",
                         "our latency / the paper's"], rows),
              f"![fig9]({f.name})", "", *missing_note(runs, "fig9")]
    return lines, [f]


# --- Table 6: two-stage ------------------------------------------------------------------------
def saving(stage1: float | None, stage2: float | None) -> float:
    """1 - stage2 / stage1 (NaN where either is missing)."""
    if not stage1 or stage2 is None:
        return math.nan
    return 1.0 - float(stage2) / float(stage1)


def pct(v: float) -> str:
    return f"{100 * v:.1f} %" if math.isfinite(v) else "-"


def two_stage_summary(model: str, stage2: str, res: list[dict[str, Any]], ref: dict[str, Any]) -> list[str]:
    """One row of the savings table: bottleneck, energy and power savings (medians over
    seeds), the paper's saving of the stage-2 metric and our difference to it (percentage
    points), the constraint."""
    ts = [r["two_stage"] for r in res]
    sv = two_stage_savings(res)
    p = (ref.get("table6", {}).get(model) or {}).get(stage2)
    ours = sv["energy_nJ" if stage2 == "energy" else "l1_l2_power"]
    within = all((layer.get("stage2") or {}).get("runtime_cycles", math.inf) <= t["bottleneck_cycles"]
                 for r, t in zip(res, ts) if t.get("bottleneck_cycles") for layer in r["layers"])
    b = ts[0].get("bottleneck_cycles")
    return [model, stage2, f"layer {ts[0].get('bottleneck_layer')}, {compare.fmt(b)} cycles" if b else "none",
            pct(sv["energy_nJ"]), pct(sv["power"]), pct(sv["l1_l2_power"]),
            f"{100 * p:.0f} %" if p is not None else "the paper gives none",
            f"{100 * (ours - p):+.1f} points" if p is not None and math.isfinite(ours) else "-",
            "yes" if within else "NO"]


def two_stage_savings(res: list[dict[str, Any]]) -> dict[str, float]:
    """Median over the runs of the pipeline's saving (fraction) in energy, power and L1+L2 power."""
    ts = [r["two_stage"] for r in res]
    return {m: compare.median([saving((t.get("stage1") or {}).get(m), (t.get("stage2") or {}).get(m))
                               for t in ts]) for m in ("energy_nJ", "power", "l1_l2_power")}


def l1_l2_power(outputs: dict[str, Any]) -> float:
    """The L1 + L2 buffers' power of a layer's best mapping (mW; NaN where not recorded)."""
    if "l1_power" not in outputs or "l2_power" not in outputs:
        return math.nan
    return float(outputs["l1_power"]) + float(outputs["l2_power"])


def stage_value(outputs: dict[str, Any], stage2: str) -> float:
    """What stage 2 changes of a layer: energy (nJ), or for stage2=power the L1+L2 power (mW)."""
    return float(outputs.get("energy_nJ", math.nan)) if stage2 == "energy" else l1_l2_power(outputs)


def two_stage_layers(res: dict[str, Any], stage2: str) -> list[list[str]]:
    """Per layer of one run: both stages' latency, energy, power and L1+L2 power, the
    bottleneck marked, the saving in what stage 2 changes."""
    t = res["two_stage"]
    rows = []
    for layer in res["layers"]:
        s1, s2 = layer.get("stage1") or {}, layer.get("stage2") or {}
        mark = " **bottleneck**" if layer.get("index") == t.get("bottleneck_layer") else ""
        rows.append([f"{layer.get('index')}{mark}", layer.get("shape", ""),
                     compare.fmt(s1.get("runtime_cycles", math.nan)),
                     compare.fmt(s2.get("runtime_cycles", math.nan)),
                     fmt_num(s1.get("energy_nJ", math.nan)), fmt_num(s2.get("energy_nJ", math.nan)),
                     fmt_num(s1.get("power", math.nan)), fmt_num(s2.get("power", math.nan)),
                     fmt_num(l1_l2_power(s1)), fmt_num(l1_l2_power(s2)),
                     pct(saving(stage_value(s1, stage2), stage_value(s2, stage2)))])
    return rows


def two_stage_panel(ax: Any, res: dict[str, Any], model: str, stage2: str, ours: float,
                    paper: float | None) -> None:
    """Per layer, what stage 2 changes (energy, or L1+L2 power) after stage 1 and after
    stage 2; the bottleneck dashed; the title gives our saving (``ours``, a fraction) beside the
    paper's (``paper``; None where it gives none)."""
    layers = res["layers"]
    idx = np.arange(len(layers))
    for shift, stage, name in ((-0.2, "stage1", "stage 1 (latency)"), (0.2, "stage2", f"stage 2 ({stage2})")):
        ax.bar(idx + shift, [stage_value(layer.get(stage) or {}, stage2) for layer in layers], 0.4,
               label=name)
    for i, layer in enumerate(layers):
        if layer.get("index") == res["two_stage"].get("bottleneck_layer"):
            ax.axvline(i, color="red", ls="--", lw=0.8, label="bottleneck layer")
    ax.set_xticks(idx, [str(layer.get("index")) for layer in layers], fontsize=9)
    what = "energy" if stage2 == "energy" else "L1+L2 power"
    theirs = (f"paper {100 * paper:.0f} %" + ("" if stage2 == "energy" else " (of power)")
              if paper is not None else "the paper gives none")
    ax.set(xlabel="layer",
           ylabel="energy per layer (nJ)" if stage2 == "energy" else "L1+L2 power per layer (mW)")
    log_axis(ax, tick_num)
    ax.set_title(f"{model}, stage 2 = {stage2}\n{what} saving: ours {pct(ours)}, {theirs}", fontsize=10)
    ax.legend(fontsize=8)


def section_table6(runs: Runs, ref: dict[str, Any], out: Path) -> tuple[list[str], list[Path]]:
    lines = ["## Table 6: two-stage optimization of a pipelined multi-accelerator (S3 edge)", "",
             *not_done(runs, "table6")]
    jobs = runs.done("table6")
    if not jobs:
        return lines, []
    lines += ["Stage 1 minimizes each layer's latency; the slowest layer's latency is the pipeline's "
              "bottleneck; stage 2 minimizes `objective.stage2` (energy or power) with every layer's "
              "latency <= the bottleneck, starting from the stage-1 best; each stage has the full "
              "budget. Saving = 1 - stage 2 / stage 1 of the pipeline's total (results.json "
              "`two_stage.stage1`/`stage2`: energy summed over layers, power summed over the "
              "sub-accelerators), median over seeds. MAESTRO's power is PEs + L1 + L2 + NoC, and "
              "only the L1 and L2 terms depend on the mapping (the PE and NoC terms are fixed by "
              "the platform), so the total power saving is about 0 and the L1+L2 column shows the "
              "part a mapping can change.", ""]
    keys = sorted({(value_of(j, "model.name"), value_of(j, "objective.stage2")) for j in jobs})
    summary, per_layer = [], []
    plt = plt_module()
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2), squeeze=False)
    for ax, (model, stage2) in zip(axes[0], keys):
        mine = select(jobs, **{"model.name": model, "objective.stage2": stage2})
        res = [r for r in (runs.results(j) for j in mine) if r and r.get("two_stage")]
        if not res:
            summary.append([model, stage2, "no two_stage record in results.json", *["-"] * 6])
            ax.set_axis_off()
            continue
        summary.append(two_stage_summary(model, stage2, res, ref))
        per_layer += [f"### {model}, stage 2 = {stage2} (seed {res[0].get('seed')})", "",
                      *md_table(["layer", "shape", "latency 1 (cycles)", "latency 2", "energy 1 (nJ)",
                                 "energy 2", "power 1 (mW)", "power 2", "L1+L2 power 1 (mW)",
                                 "L1+L2 power 2", "energy saving" if stage2 == "energy" else
                                 "L1+L2 power saving"],
                                two_stage_layers(res[0], stage2))]
        saved = two_stage_savings(res)["energy_nJ" if stage2 == "energy" else "l1_l2_power"]
        two_stage_panel(ax, res[0], model, stage2, saved, (ref.get("table6", {}).get(model) or {}).get(stage2))
    fig.tight_layout()
    f = out / "table6.png"
    fig.savefig(f, dpi=100)
    plt.close(fig)
    lines += md_table(["model", "stage 2", "bottleneck (first seed)", "energy saving", "power saving",
                       "L1+L2 power saving", "paper (stage-2 metric)",
                       "ours vs the paper (power: L1+L2's saving)",
                       "every stage-2 latency <= bottleneck"], summary)
    return lines + per_layer + [f"![table6]({f.name})", "", *missing_note(runs, "table6")], [f]


# --- the report ---------------------------------------------------------------------------------
#: The report's sections in order; a section is written when one of its parts was planned.
SECTIONS = {"fig6": section_fig6, "table5": section_table5, "modes": section_modes,
            "fig8": section_fig8, "fig9": section_fig9, "table6": section_table6}
SECTION_OF = {"fig6": "fig6", "fig6_paper": "fig6", "fig6_any": "modes", "fig6_noguard": "modes",
              "fig6_nostructure": "modes", "table5": "table5", "table5_paper": "table5",
              "fig8": "fig8", "fig9": "fig9", "table6": "table6"}


def write_report(runs: Runs, ref: dict[str, Any], out: Path, header: list[str]) -> list[Path]:
    """README.md and the PNGs of every section whose parts were planned."""
    lines, files = list(header), []
    planned = {SECTION_OF[j.part] for j in runs.jobs}
    if planned & {"fig6", "table5"} and any(j.part.endswith("_paper") for j in runs.jobs):
        planned.add("modes")  # paper mode beside the defaults, also without the one-change parts
    for name in (n for n in SECTIONS if n in planned):
        part_lines, part_files = SECTIONS[name](runs, ref, out)
        lines += part_lines
        files += part_files
    (out / "README.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return [out / "README.md", *files]


def git_commit() -> str:
    commit, _ = store.git_revision()
    return commit[:10] if commit else "unknown"


def run_folder(root: Path, when: float) -> Path:
    """A new folder ``root/<date>_<time>`` (``_2``, ``_3``, ... if that one exists already)."""
    base = root / time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(when))
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}_{n}")
    return folder


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one seed, fewer layers and samples (~8 min)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--out", help="report folder (default: a new outputs/paper/<date>_<time>/)")
    where.add_argument("--update-report", action="store_true",
                       help="rewrite the committed report (reports/paper/)")
    ap.add_argument("--reuse", action=argparse.BooleanOptionalAction, default=True,
                    help="reuse finished MLflow runs of the same config (default) or run every job")
    ap.add_argument("--parts", help="comma-separated parts of the plan (default: all)")
    ap.add_argument("--uri", help="MLflow tracking URI (default: as run.py)")
    ap.add_argument("--plan", default=str(PLAN), help="the plan (default scripts/paper_plan.yaml)")
    ap.add_argument("--sweep-dir", help="where the sweeps' folders go (default: the run folder's sweeps/)")
    ap.add_argument("--dry-run", action="store_true", help="list the sweeps that would run, run nothing")
    return ap.parse_args(argv)


def command_line(args: argparse.Namespace) -> str:
    """The command that wrote a report, as the report states it."""
    flags = [f for f, on in (("--quick", args.quick), ("--update-report", args.update_report)) if on]
    return " ".join(["python scripts/reproduce_paper.py", *flags])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    started_ms = int(t0 * 1000)
    folder = run_folder(OUTPUTS, t0)
    out = REPORT if args.update_report else Path(args.out) if args.out else folder
    committed = out.resolve() == REPORT.resolve()  # also --out reports/paper: no sweeps in it
    sweep_root = Path(args.sweep_dir) if args.sweep_dir else (folder if committed else out) / "sweeps"
    try:
        plan = yaml.safe_load(Path(args.plan).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        print(f"error: --plan {args.plan}: {e}", file=sys.stderr)
        return 1
    ref = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    parts = args.parts.split(",") if args.parts else list(plan["parts"])
    unknown = [p for p in parts if p not in plan["parts"] or p not in SECTION_OF]
    if unknown:
        print(f"error: --parts: unknown part {', '.join(unknown)} (parts: {', '.join(plan['parts'])})",
              file=sys.stderr)
        return 1
    composer = Composer()
    try:
        jobs = plan_jobs(plan, args.quick, parts, composer)
    except GammaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        composer.close()
    uri = args.uri
    match_runs(jobs, uri, 0 if args.reuse else started_ms)
    reused = sum(j.run is not None for j in jobs)
    print(f"{len(jobs)} jobs in {len(parts)} parts; {reused} reused from MLflow", flush=True)
    if args.dry_run:
        todo: dict[str, list[Job]] = defaultdict(list)
        for j in jobs:
            if j.run is None:
                todo[j.part].append(j)
        for part, mine in todo.items():
            for box in boxes(mine):
                print(f"{part}: python run.py -m experiment={mine[0].experiment} {grid_text(box)}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    print(f"report: {out}", flush=True)
    ran = run_missing(jobs, sweep_root, uri, str(plan.get("launcher") or "joblib"),
                      int(plan.get("sweeps_at_once") or 1))
    if ran:
        print(f"sweeps: {sweep_root}", flush=True)
        match_runs(jobs, uri, 0 if args.reuse else started_ms)
    runs = Runs(jobs, uri)
    missing = sum(j.run is None for j in jobs)
    mode = "quick run (`--quick`)" if args.quick else "full run"
    header = ["# The paper's experiments, reproduced", "",
              f"**{mode}**, written by `{command_line(args)}` "
              f"at commit {git_commit()} on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
              f"{len(jobs)} jobs ({ran} run now, {reused} reused from MLflow, {missing} missing); "
              "TOTAL_TIME.", "",
              *(["A quick run searches 1 seed, a few layers and a small budget per unique layer: its "
                 "numbers show that the pipeline works and the direction of each result, not the "
                 "paper-scale values (run without `--quick` for those).", ""] if args.quick else []),
              "The paper's numbers are in scripts/paper_reference.yaml; factors are "
              "'x lower than the other side' (> 1: GAMMA better); 'ours vs the paper' says how "
              "many times lower or higher our factor is than the paper's (or that it lies within "
              "the paper's range).", ""]
    files = write_report(runs, ref, out, header)
    total = time.time() - t0
    text = (out / "README.md").read_text(encoding="utf-8")
    (out / "README.md").write_text(text.replace("TOTAL_TIME", f"total time {total:,.0f} s "
                                                f"({total / 60:.1f} min) on {os.cpu_count()} cores", 1),
                                   encoding="utf-8")
    print(f"wrote {len(files)} files to {out}")
    print(f"total time {total:,.0f} s ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
