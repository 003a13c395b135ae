#!/usr/bin/env python
"""Sample efficiency: how an optimizer's end-to-end cost falls with the samples it may spend.

Usage: python scripts/sample_efficiency.py [--model resnet18] [--system s2] [--platform edge]
           [--layers 2,7] [--budgets 600,2000,10000,100000] [--optimizers gamma,cma,de,bo,random]
           [--seeds 3] [--jobs 2] [--cap bo=10000,...] [--experiment sample_efficiency] [--uri URI]
           [--out DIR] [--no-reuse]

For every optimizer x budget x seed (seeds 0..N-1) it needs one ``run.py`` job (latency
objective, the optimizer's default settings, the given layers); ``--cap OPT=B`` leaves out an
optimizer's budgets above B (a search too slow to run at the largest budget; the table then has
no rows for them and its curve is that of its largest budget run). Jobs already in the MLflow
experiment (``--experiment``, store ``--uri``, default the project's store) with the same model,
system, platform, objective, layers, optimizer (label = the optimizer's name, i.e. default
settings), budget and seed, finished, are reused; the others are run as joblib sweeps
(``run.py -m hydra/launcher=joblib``, ``--jobs`` at once) tracked into that experiment.
``--no-reuse`` runs every job again and uses only the runs made by this call; ``--available``
runs nothing and reports the finished runs there are (fewer seeds where some are missing: the
table's ``seeds`` column).

Every figure comes from the runs' results.json (MLflow artifact). The end-to-end cost of a run is
the sum over the selected layers of each layer's best latency (cycles). The **best known** cost is
the sum over layers of the lowest best cost any run (any optimizer, budget, seed) found for that
layer: a combination of mappings that exists, at most every run's end-to-end cost.

Budgets are run as separate jobs, so the table's figure at budget B is what a B-sample search
gives. The curves (best-so-far against samples, summed over layers: each layer's ``history`` on
the recording grid of its budget) are those of the largest-budget runs. For the optimizers of
:data:`PREFIX_RUN` a search with budget B makes the same first B samples as a longer one (their
settings do not depend on the budget), so the largest run's curve at n samples is what a
budget-n search gives; the script checks this against the smaller-budget runs (exact equality
at the budgets on the large run's grid) and prints the result. "Samples to within 5 %" is read
from that curve (the first recorded sample count at or below 1.05 x the best known: an upper
bound within the grid's spacing, about 10 % on its log part) only for an optimizer of
:data:`PREFIX_RUN` whose check passed, or of :data:`IID_RUN` (random search: independent draws,
so the curve has the distribution of a budget-n run's result); otherwise "n/a", and the table
gives the smallest budget of the list whose median run is within 5 % (">B" if none is).

Writes to DIR (default reports/sample_efficiency/<model>-<system>-<platform>/): table.csv,
table.md (also printed) and sample_efficiency.png (log-log: median over seeds of the
largest-budget runs' best-so-far with the seeds' min-max band; the smaller budgets' medians as
markers; the best known and 1.05 x it as lines). Exit 1 on bad arguments or failed jobs.
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

from gamma.tracking import reader
from gamma.errors import GammaError

#: Optimizers whose search does not depend on the budget (a budget-B run is the first B samples
#: of a longer run with the same seed), and why. Checked against the runs each time.
PREFIX_RUN: dict[str, str] = {
    "gamma": "population and operator rates are fixed; the budget only sets how many "
             "generations run (budget / population)",
    "bo": "initial design, batch, history and candidates are fixed settings; the budget only "
          "stops the loop",
    "cma": "nevergrad's CMA population and step come from the dimension and num_workers "
           "(batch), not from the budget it is given",
    "de": "nevergrad's DE population comes from num_workers (batch); the budget it is given "
          "is not used by its default settings",
}
#: Optimizers whose samples are independent draws: a budget-B run's best has the distribution of
#: the best of a longer run's first B samples, though not its values (a shorter last batch draws
#: other genomes), so their curve counts without the exact check.
IID_RUN: dict[str, str] = {"random": "uniform draws, independent of each other and of the budget"}
WITHIN = 0.05  # "within 5 % of the best known"
Key = tuple[str, int, int]  # optimizer, budget, seed


# --- arguments ------------------------------------------------------------------------------------
def int_list(text: str, what: str) -> list[int]:
    """``"2,7"`` -> [2, 7]; an ``argparse`` error for anything but positive integers."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: {text!r} is not a comma-separated list of integers") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{what}: {text!r} must list positive integers")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--system", default="s2")
    p.add_argument("--platform", default="edge")
    p.add_argument("--layers", default="2,7", type=lambda t: int_list(t, "--layers"))
    p.add_argument("--budgets", default="600,2000,10000,100000", type=lambda t: int_list(t, "--budgets"))
    p.add_argument("--optimizers", default="gamma,cma,de,bo,random",
                   type=lambda t: [v.strip() for v in t.split(",") if v.strip()])
    p.add_argument("--seeds", default=3, type=int, help="seeds 0..N-1")
    p.add_argument("--jobs", default=2, type=int, help="jobs run at once (joblib n_jobs)")
    p.add_argument("--experiment", default="sample_efficiency")
    p.add_argument("--uri", default=None, help="MLflow tracking URI (default: the project's store)")
    p.add_argument("--out", default=None, type=Path)
    p.add_argument("--no-reuse", action="store_true", help="run every job again")
    p.add_argument("--cap", default="", help="OPT=B,...: leave out OPT's budgets above B")
    p.add_argument("--available", action="store_true",
                   help="run nothing: report the finished runs there are (the seeds column says how many)")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        p.error("--seeds and --jobs must be at least 1")
    if not args.optimizers:
        p.error("--optimizers: give at least one optimizer")
    args.budgets = sorted(set(args.budgets))
    args.caps = {}
    for item in filter(None, (c.strip() for c in args.cap.split(","))):
        opt, _, cap = item.partition("=")
        if opt not in args.optimizers or not cap.isdigit() or int(cap) < min(args.budgets):
            p.error(f"--cap: {item!r} must be OPT=B with OPT one of --optimizers and B at least "
                    "the smallest budget")
        args.caps[opt] = int(cap)
    if args.out is None:
        args.out = ROOT / "reports" / "sample_efficiency" / f"{args.model}-{args.system}-{args.platform}"
    return args


# --- which runs exist ---------------------------------------------------------------------------
def run_key(run: dict[str, Any], args: argparse.Namespace) -> Key | None:
    """The (optimizer, budget, seed) a finished job run computes, None if it is not one of ours
    (other model/system/platform/objective/layers, a label other than the optimizer's name)."""
    t, p = run["tags"], run["params"]
    if run["status"] != "FINISHED" or t.get("gamma.kind", "job") != "job":
        return None
    layers = p.get("layers", "").replace(" ", "")
    if (t.get("model"), t.get("system"), t.get("platform"), t.get("objective"), layers) != (
            args.model, args.system, args.platform, "latency", "[" + ",".join(map(str, args.layers)) + "]"):
        return None
    opt = t.get("optimizer")
    if opt not in args.optimizers or t.get("label") != opt:
        return None
    try:
        return opt, int(p["budget"]), int(t["seed"])
    except (KeyError, ValueError):
        return None


def find_runs(args: argparse.Namespace, since_ms: int | None) -> dict[Key, dict[str, Any]]:
    """The newest matching run of each wanted job (started after ``since_ms`` if given)."""
    try:
        runs = reader.experiment_runs(args.experiment, args.uri)
    except GammaError:  # no such experiment yet
        return {}
    found: dict[Key, dict[str, Any]] = {}
    for r in runs:
        k = run_key(r, args)
        if k is None or (since_ms is not None and (r["start_time"] or 0) < since_ms):
            continue
        if k not in found or (r["start_time"] or 0) > (found[k]["start_time"] or 0):
            found[k] = r
    return found


def budgets_of(opt: str, args: argparse.Namespace) -> list[int]:
    """The budgets run for ``opt`` (those up to its ``--cap``)."""
    return [b for b in args.budgets if b <= args.caps.get(opt, b)]


def wanted(args: argparse.Namespace) -> list[Key]:
    return [(o, b, s) for o in args.optimizers for b in budgets_of(o, args) for s in range(args.seeds)]


def sweep_blocks(missing: list[Key]) -> list[tuple[list[str], list[int], list[int]]]:
    """The missing jobs as Cartesian blocks (optimizers, budgets, seeds), one sweep each."""
    seeds_of: dict[tuple[str, int], set[int]] = defaultdict(set)
    for o, b, s in missing:
        seeds_of[(o, b)].add(s)
    budgets_of: dict[tuple[str, tuple[int, ...]], list[int]] = defaultdict(list)
    for (o, b), seeds in seeds_of.items():
        budgets_of[(o, tuple(sorted(seeds)))].append(b)
    opts_of: dict[tuple[tuple[int, ...], tuple[int, ...]], list[str]] = defaultdict(list)
    for (o, seeds), budgets in budgets_of.items():
        opts_of[(tuple(sorted(budgets, reverse=True)), seeds)].append(o)
    return [(opts, list(budgets), list(seeds)) for (budgets, seeds), opts in opts_of.items()]


def run_sweep(block: tuple[list[str], list[int], list[int]], args: argparse.Namespace,
              sweep_dir: Path) -> int:
    """One ``run.py -m`` joblib sweep; its exit code."""
    opts, budgets, seeds = block
    cmd = [sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=joblib",
           f"hydra.launcher.n_jobs={args.jobs}", f"hydra.sweep.dir={sweep_dir}",
           f"model={args.model}", f"system={args.system}", f"platform={args.platform}",
           "objective=latency", f"layers=[{','.join(map(str, args.layers))}]",
           f"optimizer={','.join(opts)}", f"budget={','.join(map(str, budgets))}",
           f"seed={','.join(map(str, seeds))}", f"tracking.experiment={args.experiment}"]
    if args.uri:
        cmd.append(f"tracking.uri={args.uri}")
    print("running:", " ".join(cmd[1:]), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


# --- figures from results.json ------------------------------------------------------------------
def layer_costs(results: dict[str, Any]) -> dict[int, float]:
    """Each selected layer's best cost (inf where it had no feasible mapping), by layer index."""
    return {int(l["index"]): (float(l["best_cost"]) if l.get("feasible") and l.get("best_cost") is not None
                              else math.inf) for l in results["layers"]}


def summed_curve(results: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Samples per unique layer and the end-to-end best-so-far (sum over the selected layers of
    their ``history``; inf until every layer has a feasible mapping)."""
    grid = None
    total = None
    for layer in results["layers"]:
        hist = layer["history"]
        samples = np.array([h[0] for h in hist], dtype=np.int64)
        values = np.array([math.inf if h[1] is None else float(h[1]) for h in hist])
        if grid is None:
            grid, total = samples, values
        elif not np.array_equal(grid, samples):
            raise GammaError("the layers of one run have different recording grids")
        else:
            total = total + values
    return grid, total


def first_within(samples: np.ndarray, curve: np.ndarray, target: float) -> int | None:
    hit = np.nonzero(curve <= target)[0]
    return int(samples[hit[0]]) if len(hit) else None


def value_at(samples: np.ndarray, curve: np.ndarray, n: int) -> float | None:
    """The curve's value at exactly ``n`` samples, None if ``n`` is not on its grid."""
    i = np.nonzero(samples == n)[0]
    return float(curve[i[0]]) if len(i) else None


def median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def analyse(data: dict[Key, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Table rows, per-optimizer summary, the best known cost and the curves."""
    per_layer: dict[int, float] = {}
    for res in data.values():
        for i, c in layer_costs(res).items():
            per_layer[i] = min(per_layer.get(i, math.inf), c)
    best = sum(per_layer.values())
    target = (1 + WITHIN) * best
    rows, summary, curves = [], [], {}
    for opt in args.optimizers:
        seeds_at = {b: [s for s in range(args.seeds) if (opt, b, s) in data] for b in budgets_of(opt, args)}
        seeds_at = {b: ss for b, ss in seeds_at.items() if ss}  # --available: budgets with runs
        if not seeds_at:
            continue
        top = max(seeds_at)
        for b, seeds in seeds_at.items():
            costs = [sum(layer_costs(data[(opt, b, s)]).values()) for s in seeds]
            med = median(costs)
            rows.append({"optimizer": opt, "budget": b, "seeds": len(costs),
                         "median_cycles": med, "min_cycles": min(costs), "max_cycles": max(costs),
                         "median_ratio_to_best": med / best, "min_ratio_to_best": min(costs) / best,
                         "max_ratio_to_best": max(costs) / best})
        big = [summed_curve(data[(opt, top, s)]) for s in seeds_at[top]]
        curves[opt] = big
        checked = matched = 0
        for b in seeds_at:
            if b == top:
                continue
            for s, (grid, curve) in zip(seeds_at[top], big):
                at = value_at(grid, curve, b)
                if at is None or (opt, b, s) not in data:
                    continue
                checked += 1
                matched += at == sum(layer_costs(data[(opt, b, s)]).values())
        prefix_ok = opt in IID_RUN or (opt in PREFIX_RUN and checked > 0 and matched == checked)
        hits = [first_within(g, c, target) for g, c in big]
        curve_n = median([math.inf if h is None else h for h in hits])
        budget_n = next((r["budget"] for r in rows if r["optimizer"] == opt
                         and r["median_cycles"] <= target), None)
        per_sample = median([sum(l["search_s"] for l in data[(opt, top, s)]["layers"])
                             / (top * len(data[(opt, top, s)]["layers"])) for s in seeds_at[top]])
        summary.append({"optimizer": opt, "largest_budget": top, "prefix_check": f"{matched}/{checked}",
                        "search_ms_per_sample": 1000 * per_sample,
                        "samples_to_5pct": (curve_n if prefix_ok else None),
                        "samples_to_5pct_source": ("curve" if prefix_ok else "budgets"),
                        "budget_to_5pct": budget_n,
                        "curve_samples_to_5pct_per_seed": hits,
                        "ratio_at_10000": next((r["median_ratio_to_best"] for r in rows
                                                if r["optimizer"] == opt and r["budget"] == 10000), None)})
    return {"best": best, "per_layer_best": per_layer, "rows": rows, "summary": summary,
            "curves": curves, "target": target}


# --- output ---------------------------------------------------------------------------------------
def fmt_n(n: float | int | None, top: int) -> str:
    if n is None or (isinstance(n, float) and math.isinf(n)):
        return f">{top:,}"
    return f"{int(n):,}"


def write_tables(res: dict[str, Any], args: argparse.Namespace) -> str:
    out: Path = args.out
    cols = list(res["rows"][0])
    with open(out / "table.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(res["rows"])
    top = max(args.budgets)
    lines = [f"# Sample efficiency: {args.model}, {args.system}, {args.platform}, layers "
             f"{','.join(map(str, args.layers))}, latency, seeds 0-{args.seeds - 1}", "",
             f"Best known end-to-end latency (per layer, the best any run found): "
             f"{res['best']:,.0f} cycles (" + ", ".join(f"layer {i}: {c:,.0f}" for i, c in
                                                      sorted(res["per_layer_best"].items())) + ")", "",
             "| optimizer | budget | seeds | median (cycles) | min-max (cycles) | median / best | min-max / best |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['optimizer']} | {r['budget']:,} | {r['seeds']} | {r['median_cycles']:,.0f} | "
                     f"{r['min_cycles']:,.0f}-{r['max_cycles']:,.0f} | {r['median_ratio_to_best']:.4f} | "
                     f"{r['min_ratio_to_best']:.4f}-{r['max_ratio_to_best']:.4f} |")
    lines += ["", f"Samples per layer to come within 5 % of the best known ({res['target']:,.0f} cycles):", "",
              "| optimizer | samples (median over seeds) | per seed (from the largest-budget runs) | "
              "largest budget run | smallest budget with median within 5 % | prefix check | "
              "search ms per sample |", "|---|---:|---|---:|---:|---|---:|"]
    for s in res["summary"]:
        top = s["largest_budget"]
        n = fmt_n(s["samples_to_5pct"], top) if s["samples_to_5pct_source"] == "curve" else "n/a"
        per_seed = ", ".join(fmt_n(h, top) for h in s["curve_samples_to_5pct_per_seed"])
        lines.append(f"| {s['optimizer']} | {n} | {per_seed} | {top:,} | {fmt_n(s['budget_to_5pct'], top)} | "
                     f"{s['prefix_check']} | {s['search_ms_per_sample']:.2f} |")
    lines += ["", "Samples are per unique layer; \"samples\" is the first recorded count of the "
              "largest-budget runs' best-so-far within 5 % (recording grid: every budget/100-th "
              "sample and 100 log-spaced counts), given only where smaller-budget runs equal the "
              "large run's curve at their budget (prefix check: equal/compared at the budgets on "
              f"that grid) or, for {', '.join(IID_RUN) or 'none'}, whose samples are independent "
              "draws (same distribution, not the same values); \"n/a\" otherwise. Search time per "
              "sample: the largest-budget runs' search_s over their samples (median over seeds; "
              "it depends on the machine's load at the time)."]
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text, encoding="utf-8")
    return text


def plot(res: dict[str, Any], args: argparse.Namespace) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for opt, runs in res["curves"].items():
        grid = runs[0][0]
        if any(not np.array_equal(grid, g) for g, _ in runs):
            raise GammaError(f"{opt}: the seeds' recording grids differ")
        stack = np.vstack([c for _, c in runs])
        med = np.median(stack, axis=0)
        ok = np.isfinite(med)
        infeasible = sum(not np.isfinite(c[-1]) for _, c in runs)  # seeds with a layer never feasible
        line, = ax.plot(grid[ok], med[ok], label=opt + (f" ({infeasible} of {len(runs)} seeds miss a layer)"
                                                        if infeasible else ""))
        lo, hi = stack.min(axis=0), stack.max(axis=0)
        band = np.isfinite(hi)
        ax.fill_between(grid[band], lo[band], hi[band], color=line.get_color(), alpha=0.15)
        pts = [(r["budget"], r["median_cycles"]) for r in res["rows"] if r["optimizer"] == opt
               and math.isfinite(r["median_cycles"])]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", color=line.get_color(), ms=4)
    if math.isfinite(res["best"]):
        ax.axhline(res["best"], color="k", lw=0.8, ls="--", label="best known")
        ax.axhline(res["target"], color="grey", lw=0.8, ls=":", label="best known + 5 %")
    ax.set_xscale("log")
    ax.set_xlim(1, max(args.budgets) * 1.2)
    if math.isfinite(res["best"]):  # else nothing feasible to draw: linear axes, empty plot
        ax.set_yscale("log")
    ax.set_xlabel("samples per unique layer")
    ax.set_ylabel("end-to-end best latency so far (cycles)")
    ax.set_title(f"{args.model} {args.system} {args.platform}, layers {','.join(map(str, args.layers))}: "
                 f"median over seeds (dots: separate runs at each budget)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    path = args.out / "sample_efficiency.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    since = None if not args.no_reuse else int(time.time() * 1000)
    jobs = wanted(args)
    try:
        found = {} if args.no_reuse else find_runs(args, None)
        if args.available:
            jobs = [k for k in jobs if k in found]
            if not jobs:
                raise GammaError(f"no finished runs of these settings in experiment {args.experiment!r}")
        missing = [k for k in jobs if k not in found]
        print(f"{len(jobs)} jobs: {len(jobs) - len(missing)} reused from MLflow experiment "
              f"{args.experiment!r}, {len(missing)} to run", flush=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        failed = 0
        for i, block in enumerate(sweep_blocks(missing)):
            sweep_dir = args.out / "sweeps" / f"{stamp}-{i}"
            failed += run_sweep(block, args, sweep_dir) != 0
        if missing:
            found = find_runs(args, since)
        absent = [k for k in jobs if k not in found]
        if absent:
            print(f"error: {len(absent)} jobs have no finished run, e.g. optimizer={absent[0][0]} "
                  f"budget={absent[0][1]} seed={absent[0][2]}" + (f" ({failed} sweeps failed)" if failed else ""),
                  file=sys.stderr)
            return 1
        data = {}
        for k in jobs:
            res = reader.run_results(found[k]["run_id"], args.uri)
            if res is None:
                raise GammaError(f"run {found[k]['run_id']} has no results.json artifact")
            data[k] = res
        args.out.mkdir(parents=True, exist_ok=True)
        res = analyse(data, args)
        text = write_tables(res, args)
        path = plot(res, args)
    except GammaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(text)
    print(f"wrote {args.out / 'table.csv'}, {args.out / 'table.md'}, {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
