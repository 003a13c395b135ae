"""Console output of a job: a progress bar per unique layer, the per-layer table, the totals, and
the convergence plot. Units: cycles, nJ, elements (L1/L2 use), evaluations ("samples")."""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from gamma.mapping import Mapping
from gamma.results.records import bound_ratio_text
from gamma.workloads.layer import gemm_text


class LayerProgress:
    """A tqdm bar over one unique layer's budget showing the best cost so far; use as a context
    manager and pass the instance as the optimizer's ``on_progress`` callback."""

    def __init__(self, label: str, budget: int, unit: str = "") -> None:
        self.unit = unit
        self.bar = tqdm(total=budget, desc=label, unit="eval", leave=False, dynamic_ncols=True,
                        file=sys.stderr, disable=None if SWEEP_PREFIX[0] is None else True,
                        mininterval=0.2)

    def __call__(self, used: int, best: float) -> None:
        self.bar.update(max(0, used - self.bar.n))
        self.bar.set_postfix_str(f"best {_num(best)} {self.unit}".rstrip(), refresh=False)

    def __enter__(self) -> "LayerProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def _num(x: float | None, digits: int = 0) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:,.{digits}f}"


def compact_mapping(mapping: Mapping | dict[str, Any] | None) -> str:
    """One-line mapping, e.g. ``L1: S(K,4) T(C,16) ... | C14 L2: S(C,1) ...``
    (S/T = Spatial/TemporalMap(dim, size); ``size,offset`` when they differ; C = cluster size)."""
    if mapping is None:
        return "-"
    if isinstance(mapping, dict):
        mapping = Mapping.from_dict(mapping)
    parts = []
    for n, level in enumerate(mapping.levels, 1):
        head = f"C{level.cluster.size} " if level.cluster is not None else ""
        dirs = " ".join(f"{d.kind[0]}({d.dim},{d.size}" + (f",{d.offset})" if d.offset != d.size else ")")
                        for d in level.directives)
        parts.append(f"{head}L{n}: {dirs}")
    return " | ".join(parts)


def shape_text(record: dict[str, Any]) -> str:
    """A layer record's shape as people know it: ``GEMM M512 N768 K768`` for a GEMM evaluated as
    its 1x1 CONV (``gemm`` in the record), else ``shape``."""
    g = record.get("gemm")
    return gemm_text(g) if g else record["shape"]


def layer_line(record: dict[str, Any], seconds: float) -> str:
    """One line when a unique layer is done (``stage 2 layer ...`` in a two-stage job)."""
    best = record["best"]
    head = "stage 2 " if record.get("stage2") is not None else ""
    if best is None:
        return (f"{head}layer {record['index']:>3} {shape_text(record)}: no feasible mapping in "
                f"{record['samples_used']:,} samples ({seconds:.1f} s)")
    return (f"{head}layer {record['index']:>3} {shape_text(record)}: {_num(best['runtime_cycles'])} cycles, "
            f"{_num(best['energy_nJ'], 1)} nJ ({record['samples_used']:,} samples, {seconds:.1f} s)")


def proof_line(record: dict[str, Any]) -> str:
    """Under a layer line of optimizer=exhaustive: proven, or how far from proven it stopped."""
    if record.get("proven_optimal"):
        return "  proven optimal"
    lb, gap = record.get("optimum_lower_bound_cycles"), record.get("optimality_gap")
    if lb is None:
        why = "; ".join((record.get("exhaustive") or {}).get("not_proven_because") or [])
        return f"  not proven ({why})" if why else "  not proven"
    gap_text = f", gap {100 * gap:.3f} %" if gap is not None else ""
    return f"  not proven: every mapping below {_num(lb)} cycles evaluated{gap_text}"


#: Columns of the console table: the mapping column wraps to fit.
TABLE_WIDTH = 120
#: The mapping column never gets narrower than this (wider tables then exceed TABLE_WIDTH).
MIN_MAPPING_WIDTH = 30


def wrap_tokens(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken only between space-separated
    tokens (a token longer than ``width`` stays whole on its own line)."""
    lines: list[str] = []
    for token in text.split():
        if lines and len(lines[-1]) + 1 + len(token) <= width:
            lines[-1] += " " + token
        else:
            lines.append(token)
    return lines or [""]


#: Layers up to which the console table has a row per layer (beyond: one per unique shape).
TABLE_ROWS = 1000


def table_layers(records: list[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], int]], str]:
    """The table's rows: (record, 1) per layer, or beyond :data:`TABLE_ROWS` layers (record of
    the first layer, number of layers) per unique shape, with a note saying so."""
    if len(records) <= TABLE_ROWS:
        return [(r, 1) for r in records], ""
    first: dict[int, dict[str, Any]] = {}
    count: dict[int, int] = {}
    for r in records:
        first.setdefault(r["unique_index"], r)
        count[r["unique_index"]] = count.get(r["unique_index"], 0) + 1
    note = (f"({len(records):,} layers: one row per unique shape, its first layer, x the number "
            "of layers of that shape; every layer is in results.json)")
    return [(r, count[u]) for u, r in first.items()], note


def print_table(results: dict[str, Any], out: TextIO = sys.stdout, width: int = TABLE_WIDTH) -> None:
    """The per-layer table and the totals of a results.json dict, in ``width`` columns: the
    mapping wraps between its tokens onto indented continuation lines."""
    rows = [("#", "shape", "latency (cyc)", "energy (nJ)", "L1", "L2", "mapping")]
    layers, note = table_layers(results["layers"])
    texts: dict[int, str] = {}  # the mapping column, once per unique shape
    for r, count in layers:
        b = r["best"] or {}
        text = texts.get(r["unique_index"])
        if text is None:
            text = texts[r["unique_index"]] = compact_mapping(r["mapping"])
        rows.append((str(r["index"]), shape_text(r) + (f" x{count:,}" if count > 1 else ""),
                     _num(b.get("runtime_cycles")), _num(b.get("energy_nJ"), 1),
                     _num(b.get("l1_size_req")), _num(b.get("l2_size_req")), text))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    right = (False, False, True, True, True, True)
    indent = sum(widths) + 2 * len(widths)
    for row in rows:
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)]
        first, *rest = wrap_tokens(row[6], max(MIN_MAPPING_WIDTH, width - indent))
        print("  ".join(cells + [first]), file=out)
        for line in rest:
            print(" " * indent + line, file=out)
    if note:
        print(note, file=out)
    t = results["totals"]
    if t["feasible"]:
        total = (f"total over {t['layers']} layers: latency {_num(t['latency_cycles'])} cycles, "
                 f"energy {_num(t['energy_nJ'], 1)} nJ; compute bound "
                 f"{_num(t['compute_bound_cycles'])} cycles; {bound_ratio_text(results)}")
    else:
        total = (f"total over {t['layers']} layers: infeasible, no feasible mapping found for "
                 f"layers {', '.join(map(str, t['infeasible_layers']))}; compute bound "
                 f"{_num(t['compute_bound_cycles'])} cycles")
    lines = [""]
    for clause in total.split("; "):  # break between clauses, continuation lines indented
        if lines[-1] and len(lines[-1]) + 2 + len(clause) > width:
            lines[-1] += ";"
            lines.append("  " + clause)
        else:
            lines[-1] += ("; " if lines[-1] else "") + clause
    print("\n".join(lines), file=out)
    if results.get("two_stage"):
        print_two_stage(results, out)
    if results.get("codesign") and results.get("hardware"):
        if results.get("objective") in ("energy", "edp"):
            print(f"the model's {results['objective']} (minimized with the design): "
                  f"{results['codesign']['best_cost']:,.6g} {results.get('objective_unit')}"
                  + (" (latency total x energy total)" if results["objective"] == "edp" else ""),
                  file=out)
        print(hardware_line(results["hardware"], results["codesign"]["area_budget_mm2"]), file=out)
        if results.get("platform_hardware"):
            print(platform_line(results["platform_hardware"]), file=out)


def hardware_line(hw: dict[str, Any], budget_mm2: float) -> str:
    """The co-designed hardware (results.json ``hardware``) in one line: PEs (array shape), L1
    per PE and L2 (elements), area (mm^2) against the budget and its breakdown."""
    shape = f" ({hw['array_rows']} x {hw['array_cols']})" if "array_rows" in hw else ""
    a = hw["area_um2"]
    return (f"hardware: {hw['num_pes']:,} PEs{shape}, L1 {hw['l1_size']:,} per PE, L2 "
            f"{hw['l2_size']:,} elements; area {hw['area_mm2']:.4f} of {budget_mm2:.4f} mm^2 "
            f"(PEs {a['pes_um2'] / 1e6:.4f}, L1 {a['l1_um2'] / 1e6:.4f}, L2 {a['l2_um2'] / 1e6:.4f})")


#: Designs of a co-design front listed on the console at most (spread over the areas).
FRONT_ROWS = 8


def front_text(front: dict[str, Any], budget_mm2: float) -> str:
    """A co-design front (results.json ``codesign.front``) as a short table: how many designs,
    then up to :data:`FRONT_ROWS` of them spread from the smallest to the largest area, each
    with its area (mm^2), PEs, L1 per PE, L2 (elements), latency (cycles) and energy (nJ)."""
    pts = front["points"]
    pick = sorted({round(i * (len(pts) - 1) / max(1, FRONT_ROWS - 1)) for i in range(FRONT_ROWS)})
    rows = [("area mm^2", "PEs", "L1", "L2", "latency", "energy nJ")]
    for i in pick[: len(pts)]:
        p, hw = pts[i], pts[i]["hardware"]
        rows.append((f"{hw['area_mm2']:.4f}", f"{hw['num_pes']:,}", f"{hw['l1_size']:,}",
                     f"{hw['l2_size']:,}", _num(p["latency_cycles"]), _num(p["energy_nJ"], 1)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)
    return (f"front over {', '.join(front['metrics'])}: {len(pts)} designs within "
            f"{budget_mm2:.4f} mm^2 (results.json codesign.front, {len(rows) - 1} shown; "
            f"MAESTRO files in mappings/front/, plot pareto.png)\n{table}")


def platform_line(hw: dict[str, Any]) -> str:
    """The fixed platform beside a co-designed design (results.json ``platform_hardware``): its
    name, PEs, L1 per PE and L2 (elements) and its area under the same model (mm^2)."""
    return (f"platform {hw.get('name')}: {hw['num_pes']:,} PEs, L1 {hw['l1_size']:,} per PE, "
            f"L2 {hw['l2_size']:,} elements; area {hw['area_mm2']:.4f} mm^2")


def print_two_stage(results: dict[str, Any], out: TextIO = sys.stdout) -> None:
    """objective=two_stage: per layer both stages' latency (cycles), energy (nJ) and power (mW),
    the bottleneck layer marked, then the totals and the savings."""
    ts = results["two_stage"]
    rows = [("#", "shape", "stage-1 latency", "energy", "power", "stage-2 latency", "energy",
             "power", "")]
    for r in results["layers"]:
        a, b = r.get("stage1") or {}, r.get("stage2") or {}
        cells = [_num(x.get(k), d) for x in (a, b)
                 for k, d in (("runtime_cycles", 0), ("energy_nJ", 1), ("power", 1))]
        mark = "<- bottleneck" if r["index"] == ts.get("bottleneck_layer") else ""
        rows.append((str(r["index"]), r["shape"], *cells, mark))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\ntwo-stage (pipeline, one layer per sub-accelerator; stage 2 minimizes "
          f"{ts['stage2_metric']} with latency <= the bottleneck):", file=out)
    for row in rows:
        print("  ".join(c.ljust(w) if i < 2 or i == 8 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip(), file=out)
    if ts.get("bottleneck_cycles") is None:
        print("no bottleneck (a layer has no feasible stage-1 mapping): stage 2 not run", file=out)
        return
    print(f"bottleneck: layer {ts['bottleneck_layer']}, {_num(ts['bottleneck_cycles'])} cycles",
          file=out)
    for name in ("stage1", "stage2"):
        t = ts.get(name)
        if t:
            print(f"{name.replace('stage', 'stage ')} total: latency {_num(t['latency_cycles'])} cycles "
                  f"(slowest layer {_num(t['max_layer_latency_cycles'])}), energy "
                  f"{_num(t['energy_nJ'], 1)} nJ, power {_num(t['power'], 1)} mW (L1+L2 "
                  f"{_num(t['l1_l2_power'], 1)} mW)", file=out)
    sav = ts.get("savings_percent")
    if sav:
        print(f"saving of stage 2: power {_num(sav['power'], 1)} %, energy {_num(sav['energy_nJ'], 1)} %, "
              f"latency {_num(sav['latency_cycles'], 1)} %; L1+L2 power "
              f"{_num(sav['l1_l2_power'], 1)} %", file=out)


def plot_convergence(results: dict[str, Any], path: str | Path) -> Path | None:
    """PNG of best-so-far cost vs samples per unique layer (log y); None if nothing to plot."""
    curves: dict[int, tuple[str, list[list]]] = {}
    for r in results["layers"]:
        pts = [p for p in r["history"] if p[1] is not None]
        if pts and r["unique_index"] not in curves:
            curves[r["unique_index"]] = (f"layer {r['index']} {r['shape']}", pts)
    if not curves:
        return None
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5.5))
    colors = plt.get_cmap("tab20").colors
    for n, (label, pts) in enumerate(curves.values()):
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", label=label, lw=1.3,
                color=colors[(2 * n) % 20 + (n // 10) % 2])
    ax.set_yscale("log")
    ax.set_xlabel("samples (cost-model evaluations)")
    unit = results.get("objective_unit")
    ax.set_ylabel(f"best {results.get('objective', 'cost')} so far" + (f" ({unit})" if unit else ""))
    ax.set_title(f"{results.get('model')} on {results.get('platform')} ({results.get('system')}), "
                 f"{results.get('optimizer')}, seed {results.get('seed')}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


#: The job log (Hydra's run.log); see :func:`say`.
JOB_LOG = logging.getLogger("gamma.job")
#: In a sweep's job: the prefix of its console lines (see :func:`sweep_console`); else None.
SWEEP_PREFIX: list[str | None] = [None]


def sweep_console(prefix: str | None) -> None:
    """From here on this process runs a sweep's job (``prefix`` names it) or, with None, a
    single job: a sweep's job prints only its errors and its ``headline`` lines, each line
    prefixed with ``[prefix]``, and shows no progress bars; every line still goes to run.log."""
    SWEEP_PREFIX[0] = prefix
    LAST_ERROR[0] = None


#: The last ``error: ...`` said since :func:`sweep_console` (a sweep names a failed job by it).
LAST_ERROR: list[str | None] = [None]


def last_error() -> str | None:
    """The last ``error: ...`` said since :func:`sweep_console`, without ``error: ``; None if none."""
    return LAST_ERROR[0]


def say(text: str, error: bool = False, headline: bool = False) -> None:
    """Print ``text`` (stdout, or stderr for an error) and copy it to the job log: under Hydra
    the logger ``gamma.job`` writes only to ``<run folder>/run.log``
    (conf/hydra/job_logging/gamma.yaml); elsewhere it has no handler and this just prints. In a
    sweep's job (:func:`sweep_console`) only errors and ``headline`` lines are printed."""
    prefix = SWEEP_PREFIX[0]
    if error and text.startswith("error: "):
        LAST_ERROR[0] = text[len("error: "):]
    if prefix is None:
        print(text, file=sys.stderr if error else sys.stdout, flush=True)
    elif error or headline:
        lines = text.strip("\n").splitlines() or [""]
        print("\n".join(f"[{prefix}] {line}" for line in lines),
              file=sys.stderr if error else sys.stdout, flush=True)
    JOB_LOG.log(logging.ERROR if error else logging.INFO, text)
