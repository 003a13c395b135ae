"""One mapping-search job: every selected layer of a model on one platform, one optimizer.

Each unique layer shape is searched once with a budget of ``budget`` cost-model evaluations and
its own generator ``np.random.default_rng([seed, unique_index])`` (``unique_index`` counts the
model's unique shapes, so a layer's result does not depend on ``layers``). Every layer then takes
its shape's result. results.json (see :mod:`gamma.results`) is rewritten after each unique layer.
Units: cycles, nJ, elements, seconds.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gamma import report, results as R, tracking
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapspace import MapSpace
from gamma.objective import METRICS, Objective
from gamma.optimizers import Optimizer, ProgressCallback, make_optimizer
from gamma.workload import Layer, Model, model_from_config


def plain_config(cfg: Any) -> dict[str, Any]:
    """A Hydra/OmegaConf config as plain, resolved dicts and lists."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def select_layers(model: Model, layers: Any) -> list[int]:
    """The 1-based layer indices to search (``None`` = all), sorted, without duplicates."""
    n = len(model)
    if layers is None:
        return list(range(1, n + 1))
    items = [layers] if isinstance(layers, int) else layers
    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)) or not items:
        raise GammaError(f"layers must be null or a list of 1-based layer indices, got {layers!r}")
    bad = [i for i in items if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= n]
    if bad:
        raise GammaError(f"layers: {bad} not in 1..{n} ({model.name} has {n} layers)")
    return sorted(set(items))


def optimizer_spec(cfg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(registered name, constructor params) from ``cfg['optimizer']``."""
    opt = dict(cfg["optimizer"])
    return str(opt.pop("name")), opt


@dataclass
class Setup:
    """What a job searches: the model, the hardware and the layers."""

    model: Model
    hw: Hardware
    selected: list[int]  # 1-based model layer indices
    unique: list[Layer]  # the model's unique shapes
    which: list[int]  # per model layer (0-based), its unique index

    @property
    def todo(self) -> list[int]:
        """Unique indices to search, in order of first appearance among the selected layers."""
        return list(dict.fromkeys(self.which[i - 1] for i in self.selected))

    def layers_of(self, u: int) -> list[int]:
        return [i for i in self.selected if self.which[i - 1] == u]


def build_setup(cfg: dict[str, Any]) -> Setup:
    """Model, hardware and layer selection; checks the seed, budget and optimizer settings."""
    for key in ("seed", "budget"):
        if isinstance(cfg.get(key), bool) or not isinstance(cfg.get(key), int) or cfg[key] < 0:
            raise GammaError(f"{key} must be a non-negative integer, got {cfg.get(key)!r}")
    model = model_from_config(cfg["model"])
    hw = Hardware.from_dict(cfg["platform"])
    name, params = optimizer_spec(cfg)
    make_optimizer(name, **params)  # fail before searching
    unique, which = model.unique_layers()
    return Setup(model, hw, select_layers(model, cfg.get("layers")), unique, which)


def make_objective(cfg: dict[str, Any], layer: Layer, hw: Hardware) -> Objective:
    """The objective of one layer: its map space under the system's level limits."""
    sysc, ms, obj = cfg["system"], cfg["mapspace"], cfg["objective"]
    try:
        space = MapSpace(layer, hw.num_pes, sysc["min_levels"], sysc["max_levels"],
                         tuple(ms["parallel_dims"]), ms["inner_tiles"],
                         fixed_inner_cluster=sysc.get("fixed_inner_cluster"))
    except ValueError as e:
        raise GammaError(f"map space of {layer.shape}: {e}") from None
    return Objective(space, hw, int(cfg["budget"]), metric=obj["name"],
                     tie_break=obj.get("tie_break"), guard=bool(cfg.get("guard", True)))


def search_unique(cfg: dict[str, Any], setup: Setup, u: int,
                  on_progress: ProgressCallback | None = None) -> R.UniqueResult:
    """Search unique layer ``u`` with a fresh optimizer and generator."""
    objective = make_objective(cfg, setup.unique[u], setup.hw)
    name, params = optimizer_spec(cfg)
    optimizer: Optimizer = make_optimizer(name, **params)
    rng = np.random.default_rng([int(cfg["seed"]), u])
    t0 = time.perf_counter()
    optimizer.optimize(objective, rng, on_progress)
    return R.UniqueResult.from_objective(objective, u, time.perf_counter() - t0)


class Job:
    """A job's state: its config, output folder, results dict and tracker."""

    def __init__(self, cfg: dict[str, Any], out_dir: Path, tracker: tracking.Tracker,
                 t0: float) -> None:
        self.cfg, self.out_dir, self.tracker, self.t0 = cfg, out_dir, tracker, t0
        self.results: dict[str, Any] = {
            "status": "running", "label": job_label_of(cfg), "model": cfg["model"].get("name"), "system": cfg["system"]["name"],
            "platform": cfg["platform"]["name"], "optimizer": cfg["optimizer"]["name"],
            "objective": cfg["objective"]["name"],
            "objective_unit": METRICS.get(cfg["objective"]["name"], ""),
            "seed": cfg["seed"], "budget": cfg["budget"], "guard": cfg.get("guard", True),
            "hardware": None, "selected_layers": None,
            "mlflow": {"uri": tracker.uri, "run_id": None} if tracker.uri else None,
            "wall_s": 0.0, "costmodel_s": 0.0, "search_s": 0.0,
            "totals": R.compute_totals([]), "layers": [],
        }

    @property
    def results_path(self) -> Path:
        return self.out_dir / "results.json"

    def save(self) -> None:
        """Timings and totals up to date, then an atomic rewrite of results.json."""
        self.results["wall_s"] = round(time.perf_counter() - self.t0, 3)
        self.results.update(self.timings())
        self.results["totals"] = R.compute_totals(self.results["layers"])
        R.write_json_atomic(self.results_path, self.results)

    def timings(self) -> dict[str, float]:
        """Seconds in the cost model and in the search, each unique layer counted once."""
        seen = {r["unique_index"]: r for r in self.results["layers"]}.values()
        return {"costmodel_s": round(sum(r["costmodel_s"] for r in seen), 4),
                "search_s": round(sum(r["search_s"] for r in seen), 4)}

    def run(self) -> None:
        """Search every selected layer; results.json after each unique layer."""
        setup = build_setup(self.cfg)
        self.results.update(model=setup.model.name, hardware=setup.hw.to_dict(),
                            selected_layers=setup.selected)
        todo = setup.todo
        print(f"{setup.model.name}: {len(setup.selected)} of {len(setup.model)} layers "
              f"({len(todo)} unique shapes); {self.results['platform']} ({setup.hw.num_pes} PEs), "
              f"{self.results['system']}, {self.results['optimizer']}, {self.results['objective']}, "
              f"{self.cfg['budget']:,} samples per unique layer, seed {self.cfg['seed']}", flush=True)
        self.save()
        for n, u in enumerate(todo, 1):
            label = f"[{n}/{len(todo)}] layer {setup.layers_of(u)[0]}"
            with report.LayerProgress(label, int(self.cfg["budget"]),
                                      self.results["objective_unit"]) as bar:
                res = search_unique(self.cfg, setup, u, bar)
            self.add(setup, res)

    def add(self, setup: Setup, res: R.UniqueResult) -> None:
        """Record a finished unique layer for each of its layers; save; tell the tracker."""
        records = [R.layer_record(i, res, setup.model.name) for i in setup.layers_of(res.unique_index)]
        self.results["layers"] = sorted(self.results["layers"] + records, key=lambda r: r["index"])
        mdir = self.out_dir / "mappings"
        mdir.mkdir(exist_ok=True)
        for r in records:
            if r["mapping_text"] is not None:
                (mdir / f"layer_{r['index']:02d}.m").write_text(r["mapping_text"], encoding="utf-8")
        self.save()
        print(report.layer_line(records[0], res.search_s), flush=True)
        self.tracker.layer_done()

    def finish(self, status: str) -> str | None:
        """Final results.json, console table, plot and MLflow run; returns a tracking error."""
        self.results["status"] = status
        error = None
        try:
            run_id = self.tracker.connect()
            if run_id:
                self.results["mlflow"]["run_id"] = run_id
        except GammaError as e:
            error = str(e)
        if getattr(self.tracker, "error", None):
            self.results["mlflow"]["error"] = self.tracker.error
        self.save()
        if self.results["layers"]:
            print()
            report.print_table(self.results)
        if self.tracker.uri is None:  # otherwise the tracking helper draws it
            report.plot_convergence(self.results, self.out_dir / "convergence.png")
        print(f"results: {self.results_path}", flush=True)
        try:
            self.tracker.finish(status)
        except GammaError as e:
            error = error or str(e)
        if self.tracker.run_id and error is None:
            print(f"MLflow run {self.tracker.run_id} ({status}) at {self.tracker.uri}", flush=True)
        return error


def job_label_of(cfg: dict[str, Any]) -> str:
    """The job's label (run.py fills ``label``; the optimizer's name where none is set)."""
    return str(cfg.get("label") or cfg["optimizer"]["name"])


def run_name(cfg: dict[str, Any]) -> str:
    """The label first (MLflow's runs table cuts long names), then model, system, platform, seed."""
    where = "-".join(str(x) for x in (cfg["model"].get("name"), cfg["system"]["name"],
                                      cfg["platform"]["name"], f"s{cfg['seed']}"))
    return f"{job_label_of(cfg)} | {where}"


def execute(cfg: Any, out_dir: str | Path, outputs: Path = tracking.DEFAULT_OUTPUTS) -> int:
    """Run the job of ``cfg`` writing to ``out_dir``; the process exit code: 0 done, 1 on a
    :class:`GammaError` (printed as ``error: ...``), 130 on Ctrl-C. Other exceptions propagate
    after the run is marked failed."""
    t0 = time.perf_counter()
    try:
        plain = plain_config(cfg)
    except Exception as e:  # noqa: BLE001 - omegaconf: an interpolation that does not resolve
        print(f"error: config: {e}", file=sys.stderr, flush=True)
        return 1
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(plain, sort_keys=False), encoding="utf-8")
    job = Job(plain, out, tracking.start(plain, run_name(plain), out, outputs), t0)
    status, code = "failed", 1
    try:
        job.run()
        status, code = "finished", 0
    except GammaError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        job.results["error"] = str(e)
    except KeyboardInterrupt:
        print("interrupted: results.json keeps the finished layers", file=sys.stderr, flush=True)
        status, code = "killed", 130
    except BaseException as e:
        job.results["error"] = f"{type(e).__name__}: {e}"
        job.finish("failed")
        raise
    error = job.finish(status)
    if error is not None and error != job.results.get("error"):
        print(f"error: {error}", file=sys.stderr, flush=True)
        code = code or 1
    return code
