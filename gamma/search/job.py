"""One mapping-search job: every selected layer of a model on one platform, one optimizer.

The search itself is :mod:`gamma.search.api` (in memory); a :class:`Job` adds the files, the console
output (copied to Hydra's job log) and the MLflow run around it. Each unique layer shape is
searched once with a budget of ``budget`` cost-model evaluations and its own generator
``np.random.default_rng([seed, unique_index])`` (``unique_index`` counts the model's unique
shapes, so a layer's result does not depend on ``layers``). Every layer then takes its shape's
result. results.json (see :mod:`gamma.results.records`) is rewritten after each unique layer.
``parallel.workers`` > 1 searches that many unique layers at once (:func:`gamma.search.api.search_parallel`);
``resume=true`` keeps the layers an earlier run left in the same folder (:func:`prior_results`).
Units: cycles, nJ, elements, seconds.
"""

from __future__ import annotations

import contextlib
import io
import math
import shlex
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from gamma.costmodel.warmup import warm_up
from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapspace.dataflows import dataflow_name
from gamma.objectives.metrics import UNITS
from gamma.objectives.pareto import unit_of
from gamma.results import console as report, pareto as pareto_report, records as R
from gamma.results.layout import read_results, write_failure, write_results
from gamma.workloads.maestro_hw import format_hardware_file
from gamma.results.console import say
from gamma.search import codesign, codesign_inner, optima, twostage
from gamma.search.labels import default_label
from gamma.search.parallel import search_parallel
from gamma.search.rules import PARETO, TWO_STAGE, adapt_config, search_rules
from gamma.search.setup import (Setup, build_setup, check_seed_budget, search_unique, total_cost,
                                unique_result, workers_of)
from gamma.search.signals import Signals, Terminated, interrupted_code, pending_exit
from gamma.tracking import store, writer as tracking


def plain_config(cfg: Any) -> dict[str, Any]:
    """A Hydra/OmegaConf config as plain, resolved dicts and lists."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


@dataclass
class Outcome:
    """How a job ended: the process exit code and the job's objective value."""

    code: int  # 0 done, 1 bad input, 130 interrupted (SIGINT), 143 terminated (SIGTERM)
    cost: float  # sum over layers of the best cost (objective's unit); inf if any is infeasible


#: Selected layers up to which every layer gets its mapping file (beyond: each unique shape's
#: first layer only).
MAPPING_FILES = 1000


class Job:
    """A job's state: its config, output folder, results dict and tracker."""

    def __init__(self, cfg: dict[str, Any], out_dir: Path, tracker: tracking.Tracker,
                 t0: float, prior: dict[str, Any] | None = None,
                 outputs: Path = store.DEFAULT_OUTPUTS) -> None:
        """``prior``: the results.json of an unfinished earlier run of this job (``resume``),
        whose layers are kept; ``outputs``: where the cache of proven optima lives (unless
        ``optima`` names a file)."""
        self.cfg, self.out_dir, self.tracker, self.t0 = cfg, out_dir, tracker, t0
        self.saved_at, self.save_s = -math.inf, 0.0  # the last save: when, and its seconds
        self.write_error: str | None = None  # a failed write (write_failed)
        self.optima_file = optima.cache_file(cfg, outputs)
        self.rules = rules = search_rules(cfg)
        self.results: dict[str, Any] = {
            "status": "running", "label": job_label_of(cfg), "model": cfg["model"].get("name"),
            "system": cfg["system"]["name"],
            "platform": cfg["platform"]["name"], "optimizer": cfg["optimizer"]["name"],
            "objective": cfg["objective"]["name"],
            "objective_unit": unit_of(cfg),
            "seed": cfg["seed"], "budget": cfg["budget"],
            "guard": rules.guard, "paper_mode": rules.paper_mode, "costmodel": rules.costmodel,
            "dataflow": dataflow_name(cfg),
            "hardware": None, "selected_layers": None,
            "space": optima.space_context(cfg, rules),
            "mlflow": {"uri": tracker.uri, "run_id": None} if tracker.uri else None,
            "wall_s": 0.0, "costmodel_s": 0.0, "search_s": 0.0,
            "totals": R.compute_totals([]), "layers": [],
        }
        if rules.kind == PARETO:
            self.results["objective_metrics"] = list(cfg["objective"].get("metrics") or [])
        if prior is not None:
            self.results["layers"] = list(prior.get("layers") or [])
            self.t0 -= float(prior.get("wall_s") or 0.0)  # wall_s counts both runs

    @property
    def results_path(self) -> Path:
        return self.out_dir / "results.json"

    def save(self, force: bool = True) -> None:
        """Timings and totals up to date, the MLflow run id once known, then an atomic rewrite
        of results.json (:func:`gamma.results.layout.write_results`). Unless ``force``d, a save
        is skipped while less than twice the last save's time has passed since it, so that
        rewriting a huge model's results.json takes at most a third of the job's time."""
        now = time.perf_counter()
        if not force and now - self.saved_at < 2 * self.save_s:
            return
        self.note_run_id()
        self.results["layers"].sort(key=lambda r: r["index"])
        self.results["wall_s"] = round(now - self.t0, 3)
        self.results.update(self.timings())
        self.results["totals"] = R.compute_totals(self.results["layers"])
        write_results(self.results_path, self.results)
        self.saved_at = time.perf_counter()
        self.save_s = self.saved_at - now

    def watching(self, bar: report.LayerProgress) -> Callable[[int, float], None]:
        """``bar`` as a search's progress callback that also saves results.json once when the
        MLflow run id appears (a layer may take long; a kill then still knows its run)."""
        def progress(used: int, best: float) -> None:
            bar(used, best)
            mlflow = self.results["mlflow"]
            if mlflow is not None and mlflow["run_id"] is None and self.tracker.poll_run_id():
                self.save()
        return progress

    def note_run_id(self) -> None:
        """results.json's ``mlflow.run_id`` as soon as the tracking helper has created the run
        (without waiting for it), so that a job killed even by SIGKILL resumes the same run."""
        if self.results["mlflow"] is not None and self.results["mlflow"]["run_id"] is None:
            run_id = self.tracker.poll_run_id()
            if run_id:
                self.results["mlflow"]["run_id"] = run_id

    def timings(self) -> dict[str, float]:
        """Seconds in the cost model and in the search, each unique layer counted once."""
        seen = {r["unique_index"]: r for r in self.results["layers"]}.values()
        return {"costmodel_s": round(sum(r["costmodel_s"] for r in seen), 4),
                "search_s": round(sum(r["search_s"] for r in seen), 4)}

    def run(self) -> None:
        """Search every selected layer not yet in results.json (all unless resumed), serially
        with a progress bar each or ``parallel.workers`` at once; results.json after each
        unique layer."""
        setup = build_setup(self.cfg)
        self.results.update(model=setup.model.name, hardware=setup.hw.to_dict(),
                            selected_layers=setup.selected)
        done = {r["unique_index"] for r in self.results["layers"]}
        self.results["layers"] = [r for r in self.results["layers"] if r["index"] in setup.selected]
        todo = [u for u in setup.todo if u not in done]
        workers = min(workers_of(self.cfg), len(todo)) or 1
        say(f"{setup.model.name}: {len(setup.selected)} of {len(setup.model)} layers "
            f"({len(setup.todo)} unique shapes); {self.results['platform']} ({setup.hw.num_pes} PEs), "
            f"{self.results['system']}, {self.results['label']}, {self.results['objective']}, "
            f"{self.cfg['budget']:,} samples per unique layer, seed {self.cfg['seed']}"
            + (f"; {workers} workers" if workers > 1 else ""))
        if setup.model.skipped_ops:  # an ONNX graph's operators that carry no layer
            self.results["skipped_ops"] = dict(setup.model.skipped_ops)
            say("skipped operators (no layer): " + setup.model.skipped_text())
        if done:
            say(f"resume: {len(setup.todo) - len(todo)} unique shapes already searched, "
                f"{len(todo)} to go")
        self.save()
        if workers > 1:
            for u, res in search_parallel(self.cfg, setup, todo, workers):
                self.add(setup, unique_result(u, res))
            return
        for n, u in enumerate(todo, 1):
            label = f"[{n}/{len(todo)}] layer {setup.layers_of(u)[0]}"
            with report.LayerProgress(label, int(self.cfg["budget"]),
                                      self.results["objective_unit"]) as bar:
                res = search_unique(self.cfg, setup, u, self.watching(bar))
            self.add(setup, unique_result(u, res))

    def add(self, setup: Setup, res: R.UniqueResult, extra: dict[str, Any] | None = None) -> None:
        """Record a finished unique layer for each of its layers (each record updated with
        ``extra``, e.g. the two-stage entries); save; tell the tracker."""
        first, *others = setup.layers_of(res.unique_index)
        base = {**R.layer_record(first, res, setup.model.name), **(extra or {})}
        records = [base, *({**base, "index": i} for i in others)]  # sharing base's values
        self.against_optimum(records)
        self.results["layers"] += records
        self.write_mappings(setup, res, records)
        self.save(force=False)
        say(report.layer_line(records[0], res.search_s))
        if "proven_optimal" in records[0]:
            say(report.proof_line(records[0]))
        self.tracker.layer_done()

    def write_mappings(self, setup: Setup, res: R.UniqueResult,
                       records: list[dict[str, Any]]) -> None:
        """``mappings/layer_XX.m`` of each of ``records`` (the MAESTRO file of its best mapping,
        under its own name); with more than :data:`MAPPING_FILES` selected layers only of the
        first layer of each unique shape (a model of 100,000 layers would need as many files)."""
        if res.mapping is None:
            return
        mdir = self.out_dir / "mappings"
        mdir.mkdir(exist_ok=True)
        each = len(setup.selected) <= MAPPING_FILES
        for r in records if each else records[:1]:
            i = r["index"]
            layer = setup.model.layers[i - 1]
            text = r["mapping_text"] if i == records[0]["index"] else R.maestro_text(
                i, replace(res, layer=replace(res.layer, name=layer.name)), setup.model.name)
            (mdir / f"layer_{i:02d}.m").write_text(text, encoding="utf-8")

    def against_optimum(self, records: list[dict[str, Any]]) -> None:
        """Latency objective: cache a proven optimum (``optimizer=exhaustive``), and give every
        record the cached optimum (``optimum_cycles``) and its best latency over it
        (``ratio_to_optimum``) when one is known for its layer, hardware and settings."""
        if self.results["objective"] != "latency" or not records:
            return
        r0 = records[0]
        k = optima.key(r0["shape"], self.results["hardware"], self.results["space"])
        if r0.get("proven_optimal") is True and r0["best_cost"] is not None:
            try:
                optima.store(self.optima_file, k, optima.record_entry(r0, self.results))
            except (OSError, ValueError) as e:
                say(f"warning: optima cache: {e}", error=True)
        best = optima.lookup(self.optima_file, k)
        for r in records:
            if best is not None:
                r["optimum_cycles"] = best
                r["ratio_to_optimum"] = (round(r["best_cost"] / best, 6)
                                         if r["best_cost"] is not None else None)

    def finish(self, status: str) -> None:
        """Final results.json, console table, convergence plot and MLflow run. A tracking
        failure is a warning (results.json records it; scripts/mlflow_import.py logs the run
        later): results are complete, so it does not change the exit code. A failed write
        (:meth:`write_failed`) ends the job ``failed``; results.json keeps its last complete
        version."""
        self.results["status"] = status
        with contextlib.suppress(GammaError):  # kept in tracker.error
            if self.tracker.connect():
                self.results["mlflow"]["run_id"] = self.tracker.run_id
        if self.tracker.error:
            self.results["mlflow"]["error"] = self.tracker.error
        try:
            self.save()
            if self.write_error is None:
                self.reports()
        except OSError as e:
            self.write_failed(e)
        status = self.results["status"]
        say(f"results: {self.results_path}")
        with contextlib.suppress(GammaError):
            self.tracker.finish(status)
        if self.tracker.error:
            self.results["mlflow"]["error"] = self.tracker.error
            self.save_quietly()
            say(f"warning: {self.tracker.error}; results are complete but not in MLflow (log them "
                f"later: python scripts/mlflow_import.py {shlex.quote(str(self.out_dir))} [--uri URI])",
                error=True)
        elif self.tracker.run_id:
            if self.results["mlflow"] is not None:  # a resume need not end the run
                self.results["mlflow"]["logged"] = True  # (the artifact, uploaded before, has not)
                with contextlib.suppress(OSError):
                    write_results(self.results_path, self.results)  # timings as uploaded
            say(f"MLflow run {self.tracker.run_id} ({status}) at {self.tracker.uri}")

    def reports(self) -> None:
        """The console table, convergence.png and (objective=pareto) the fronts."""
        if self.results["layers"]:
            table = io.StringIO()
            report.print_table(self.results, table)
            say("\n" + table.getvalue().rstrip("\n"))
        report.plot_convergence(self.results, self.out_dir / "convergence.png")
        pareto_report.write_artifacts(self.results, self.out_dir)

    def write_failed(self, e: OSError) -> None:
        """A write failed (disk full, file-size limit, read-only folder): say so once, and end
        the job ``failed`` with the error (in results.json if it can still be written)."""
        if self.write_error is not None:
            return
        self.write_error = write_failure(e)
        say(f"error: {self.write_error}; results.json keeps its last complete version", error=True)
        self.results.update(status="failed", error=self.write_error)
        self.save_quietly()

    def save_quietly(self) -> None:
        """:meth:`save`, where a failed write is already reported."""
        with contextlib.suppress(OSError):
            self.save()

    def cost(self) -> float:
        """The job's objective: the sum over its layers of the best cost; inf if a layer is
        infeasible or no layer was searched."""
        return total_cost([r["best_cost"] for r in self.results["layers"]])


class TwoStageJob(Job, twostage.Events):
    """A :class:`Job` that searches both stages (:mod:`gamma.search.twostage`). results.json
    gets the ``two_stage`` block (``twostage.summary``) and each layer ``stage1``, ``stage2`` and
    ``stage1_search`` (``twostage.layer_extra``); the layers enter it as stage 2 finishes them."""

    ts: twostage.TwoStage | None = None
    stage: int | None = 1
    setup: Setup

    def __init__(self, cfg: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(cfg, *args, **kwargs)
        self.metric = twostage.stage2_metric(cfg)  # checked (twostage.check) before the job is built
        self.results["objective_unit"] = UNITS[self.metric]

    def run(self) -> None:
        twostage.check(self.cfg)
        self.setup = setup = build_setup(self.cfg)
        self.results.update(model=setup.model.name, hardware=setup.hw.to_dict(),
                            selected_layers=setup.selected)
        say(f"{setup.model.name}: {len(setup.selected)} of {len(setup.model)} layers "
            f"({len(setup.todo)} unique shapes); {self.results['platform']} ({setup.hw.num_pes} "
            f"PEs), {self.results['system']}, {self.results['label']}, two-stage: latency, then "
            f"{self.metric} within the bottleneck; {self.cfg['budget']:,} samples per unique "
            f"layer per stage, seed {self.cfg['seed']}")
        self.save()
        twostage.search_two_stage(self.cfg, setup, self)
        self.stage = None

    def progress(self, stage: int, n: int, u: int) -> report.LayerProgress:
        unit = "cycles" if stage == 1 else UNITS[self.metric]
        return report.LayerProgress(f"stage {stage} [{n}/{len(self.setup.todo)}] layer "
                                    f"{self.setup.layers_of(u)[0]}", int(self.cfg["budget"]), unit)

    def searched(self, ts: twostage.TwoStage, stage: int, n: int, u: int) -> None:
        self.ts = ts
        if stage == 2:
            self.add(self.setup, unique_result(u, twostage.final_result(ts, u)),
                     twostage.layer_extra(ts, u))
            return
        r = ts.stage1[u].result
        say(f"stage 1 layer {self.setup.layers_of(u)[0]:>3} {r.layer.shape}: "
            + (f"{r.cost:,.0f} cycles" if r.feasible else "no feasible mapping")
            + f" ({r.summary['samples_used']:,} samples, {r.search_s:.1f} s)")
        self.save(force=False)

    def stage1_done(self, ts: twostage.TwoStage) -> None:
        self.ts, self.stage = ts, 2
        if ts.bottleneck is None:
            bad = [i for i in self.setup.selected
                   if not ts.stage1[self.setup.which[i - 1]].result.feasible]
            say(f"no bottleneck: no feasible stage-1 mapping for layers "
                f"{', '.join(map(str, bad))}; stage 2 not run, the layers keep their stage-1 best")
            for u in self.setup.todo:
                self.add(self.setup, unique_result(u, twostage.final_result(ts, u)),
                         twostage.layer_extra(ts, u))
            return
        cycles, layer = ts.bottleneck
        say(f"bottleneck: layer {layer}, {cycles:,.0f} cycles; stage 2 minimizes {self.metric} "
            f"with latency <= {cycles:,.0f} cycles on every layer")
        self.save()

    def save(self, force: bool = True) -> None:
        self.results["two_stage"] = twostage.summary(self.ts, self.metric,
                                                     self.results["layers"], self.stage)
        super().save(force)

    def timings(self) -> dict[str, float]:
        """Both stages' seconds, each unique layer counted once."""
        t = super().timings()
        seen = {r["unique_index"]: r for r in self.results["layers"]}.values()
        return {k: round(v + sum(r["stage1_search"][k] for r in seen if r.get("stage1_search")), 4)
                for k, v in t.items()}


class CoDesignJob(Job):
    """A :class:`Job` of ``codesign=digamma`` (:mod:`gamma.search.codesign`): one search of the
    hardware and every unique layer's mapping. results.json gets ``hardware`` (the design),
    ``platform_hardware`` (the platform, its area under the same model) and ``codesign``;
    ``mappings/hardware.m`` is the design's MAESTRO hardware file."""

    def run(self) -> None:
        codesign.check(self.cfg)
        codesign_inner.check(self.cfg)
        setup = build_setup(self.cfg)
        self.results.update(model=setup.model.name, hardware=None, selected_layers=setup.selected,
                            platform_hardware=codesign.platform_record(self.cfg))
        if self.rules.kind == PARETO:  # the front's metrics, the design's area among them
            self.results["objective_metrics"] = list(codesign.metrics_of(self.cfg))
        budget = codesign.budget_um2(self.cfg) / codesign.UM2_PER_MM2
        say(f"{setup.model.name}: {len(setup.selected)} of {len(setup.model)} layers "
            f"({len(setup.todo)} unique shapes); hardware and mappings searched together "
            f"(codesign=digamma) within {budget:.4f} mm^2 ({self.results['platform']}: "
            f"{self.results['platform_hardware']['area_mm2']:.4f} mm^2), {self.results['system']}, "
            f"{self.results['objective']}, {self.cfg['budget']:,} samples per unique layer, "
            f"seed {self.cfg['seed']}")
        self.save()
        if codesign_inner.is_grid(self.cfg):
            self.run_grid(setup)
            return
        with report.LayerProgress("co-design", int(self.cfg["budget"]),
                                  self.results["objective_unit"]) as bar:
            found = codesign.search(self.cfg, setup, self.watching(bar))
        check = codesign_inner.check_design(self.cfg, setup, found, self.optima_file, say)
        front = codesign.front_record(found, [len(setup.layers_of(u)) for u in setup.todo])
        self.results.update(hardware=codesign.hardware_record(found),
                            codesign={**codesign.codesign_record(self.cfg, found),
                                      **({"check": check} if check else {}),
                                      **({"front": front} if front is not None else {})})
        if found.design is not None:
            self.write_design(codesign.reported_hardware(found.design))
            self.write_front(setup, found)
        else:
            say(f"no design with a feasible mapping of every layer in {self.cfg['budget']:,} samples")
        for res in codesign.unique_results(setup, found):
            self.add(setup, res, codesign_inner.layer_optimum(check, res.unique_index))
        if front is not None:
            say(report.front_text(front, self.results["codesign"]["area_budget_mm2"]))

    def run_grid(self, setup: Setup) -> None:
        """``codesign.inner=exhaustive``: every candidate of ``codesign.grid`` scored by its
        proven per-layer optima (:func:`gamma.search.codesign_inner.search_grid`)."""
        say("codesign.inner=exhaustive: candidates of codesign.grid scored by proven per-layer "
            "latency optima (no GA)")
        found = codesign_inner.search_grid(self.cfg, setup, self.optima_file, say)
        self.results.update(hardware=codesign_inner.hardware_record(self.cfg, found),
                            codesign=codesign_inner.codesign_record(self.cfg, found))
        if found.design is not None:
            self.write_design(found.design)
        else:
            say("no candidate of codesign.grid with a feasible mapping of every layer")
        for res in codesign_inner.unique_results(setup, found):
            self.add(setup, res)

    def write_design(self, hw: Hardware, folder: str = "mappings") -> None:
        """``<folder>/hardware.m``: the design as a MAESTRO hardware file."""
        (self.out_dir / folder).mkdir(parents=True, exist_ok=True)
        (self.out_dir / folder / "hardware.m").write_text(format_hardware_file(hw), encoding="utf-8")

    def write_front(self, setup: Setup, found: codesign.CoDesignSearch) -> None:
        """``objective=pareto``: per design of the front its MAESTRO files, the hardware and the
        mapping of the first layer of each unique shape (``layer_XX.m``), in
        :func:`gamma.search.codesign.front_folder`."""
        for k, d in enumerate(codesign.front_designs(found) if found.objective.pareto else []):
            folder = codesign.front_folder(k)
            self.write_design(d.hw, folder)
            for u, mapping in zip(setup.todo, d.mappings):
                i = setup.layers_of(u)[0]
                res = R.UniqueResult(u, setup.model.layers[i - 1], {}, None, None, mapping, [], 0.0)
                text = R.maestro_text(i, res, setup.model.name)
                if text is not None:
                    (self.out_dir / folder / f"layer_{i:02d}.m").write_text(text, encoding="utf-8")

    def reports(self) -> None:
        """The job's reports and, for a front of designs, pareto.png."""
        super().reports()
        if (self.results.get("codesign") or {}).get("front"):
            pareto_report.plot_design_front(self.results, self.out_dir / "pareto.png")

    def cost(self) -> float:
        """The model's best cost the co-search minimized (latency, energy, EDP; a front: its
        best in the first metric); inf if none."""
        best = (self.results.get("codesign") or {}).get("best_cost")
        return float(best) if best is not None else math.inf

    def against_optimum(self, records: list[dict[str, Any]]) -> None:
        """No cached optima: the design is not the platform the cache is keyed on."""


def job_class_of(cfg: dict[str, Any]) -> type[Job]:
    """:class:`Job`, or for ``objective=two_stage`` :class:`TwoStageJob` once its settings are
    checked, or for ``codesign=digamma`` :class:`CoDesignJob`."""
    if codesign.is_codesign(cfg):
        codesign.check(cfg)
        codesign_inner.check(cfg)
        return CoDesignJob
    if search_rules(cfg).kind != TWO_STAGE:
        return Job
    twostage.check(cfg)
    return TwoStageJob


def job_label_of(cfg: dict[str, Any]) -> str:
    """The job's label (run.py fills ``label``; where none is set, the optimizer's name, a
    fixed dataflow's and ``codesign`` for a co-design job, e.g. ``fixed nvdla``, ``gamma
    codesign``: :func:`gamma.search.labels.default_label`)."""
    if cfg.get("label"):
        return str(cfg["label"])
    return default_label(cfg)


def run_name(cfg: dict[str, Any]) -> str:
    """What a sweep varies first, as MLflow's runs table cuts long names: system and label
    (``s2 pso | resnet18 edge seed 0``), then model, platform, seed."""
    where = " ".join(str(x) for x in (cfg["model"].get("name"), cfg["platform"]["name"],
                                      f"seed {cfg['seed']}"))
    return f"{cfg['system']['name']} {job_label_of(cfg)} | {where}"




#: Top-level settings that may differ between a job and its resumption (``resume``).
RESUMABLE_CHANGES = ("parallel", "resume", "tracking", "label", "optima")


def prior_results(cfg: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """With ``resume=true``: the results.json an earlier run of this job left in ``out`` (None
    without ``resume`` or without a results.json there). A :class:`GammaError` if it cannot be
    read or ``out/config.yaml`` shows other settings (other than :data:`RESUMABLE_CHANGES`)."""
    path = out / "results.json"
    if not cfg.get("resume"):
        return None
    if not path.is_file():
        say(f"resume: no results.json in {out}; starting afresh")
        return None
    try:
        prior = read_results(path)
    except GammaError as e:
        raise GammaError(f"resume: {e}; not a results.json this job can continue (move it away "
                         "or use another run folder)") from None
    try:
        old = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise GammaError(f"resume: cannot read the earlier run in {out}: {e}") from None
    if not isinstance(old, dict):
        raise GammaError(f"resume: {out / 'config.yaml'} is not a job's config")
    differ = [k for k in sorted(set(old) | set(cfg))
              if k not in RESUMABLE_CHANGES and old.get(k) != cfg.get(k)]
    if differ:
        raise GammaError(f"resume: {out} holds a job with other settings ({', '.join(differ)} "
                         "differ); resume with the same settings or use another run folder")
    return prior


def execute(cfg: Any, out_dir: str | Path, outputs: Path = store.DEFAULT_OUTPUTS) -> int:
    """Run the job of ``cfg`` writing to ``out_dir``; the process exit code (see :func:`run_job`)."""
    return run_job(cfg, out_dir, outputs).code


def run_job(cfg: Any, out_dir: str | Path, outputs: Path = store.DEFAULT_OUTPUTS) -> Outcome:
    """Run the job of ``cfg`` writing to ``out_dir``. Exit code 0 done, 1 on a
    :class:`GammaError` (printed as ``error: ...``), 130 on Ctrl-C (SIGINT), 143 on SIGTERM
    (both end results.json and the MLflow run as ``killed``); the cost is inf unless the job
    finished. A second SIGINT/SIGTERM while the job writes its final results is noted, not
    raised (the exit code then says interrupted, results.json keeps its status). Other
    exceptions propagate after the run is marked failed. The cost-model kernel is loaded first,
    before a signal can interrupt: numba loads it in ctypes callbacks, where a Ctrl-C would be
    printed and lost rather than raised."""
    warm_up()
    with Signals() as signals:
        return _run_job(cfg, out_dir, outputs, signals)


def _run_job(cfg: Any, out_dir: str | Path, outputs: Path, signals: Signals) -> Outcome:
    t0 = time.perf_counter()
    if pending_exit():  # SIGINT/SIGTERM noted before the job (run.py, a sweep's worker)
        return Outcome(pending_exit(), math.inf)
    try:
        job = _prepare(cfg, Path(out_dir), outputs, t0)
    except KeyboardInterrupt as e:  # before the job exists: nothing to keep
        signals.shutting_down(stopped=True)
        say(f"{_stopped(e)} before the search started: nothing to keep", error=True)
        return Outcome(interrupted_code(e), math.inf)
    if isinstance(job, Outcome):
        return job
    status, code = "failed", 1
    try:
        job.run()
        status, code = "finished", 0
    except GammaError as e:
        signals.shutting_down()
        say(f"error: {e}", error=True)
        job.results["error"] = str(e)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (Terminated)
        signals.shutting_down(stopped=True)
        say(f"{_stopped(e)}: results.json keeps the finished layers", error=True)
        status, code = "killed", interrupted_code(e)
    except OSError as e:  # a full disk, a file-size limit, a read-only folder
        signals.shutting_down()
        job.write_failed(e)
    except BaseException as e:
        signals.shutting_down()
        job.results["error"] = f"{type(e).__name__}: {e}"
        job.finish("failed")
        raise
    signals.shutting_down()
    job.finish(status)
    if job.write_error is not None:
        code = 1
    if signals.late is not None and code == 0:
        code = interrupted_code(signals.late)
    return Outcome(code, job.cost() if code == 0 else math.inf)


def _stopped(e: BaseException) -> str:
    return "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"


def _prepare(cfg: Any, out: Path, outputs: Path, t0: float) -> "Job | Outcome":
    """The job of ``cfg`` with its run folder, config.yaml and tracker, or the outcome of a job
    that ends before it searches (bad settings, a folder it cannot write, a finished job to
    resume)."""
    try:
        plain = plain_config(cfg)
    except Exception as e:  # noqa: BLE001 - omegaconf: an interpolation that does not resolve
        say(f"error: config: {e}", error=True)
        return Outcome(1, math.inf)
    try:
        note = adapt_config(plain)  # objective=pareto: GAMMA's selection (recorded in config.yaml)
        if note:
            say(note)
        out.mkdir(parents=True, exist_ok=True)
        check_seed_budget(plain)
        job_class = job_class_of(plain)
        prior = prior_results(plain, out)
        if prior is not None and prior.get("status") == "finished":
            return _finished_already(plain, out, outputs, prior)
        (out / "config.yaml").write_text(yaml.safe_dump(plain, sort_keys=False), encoding="utf-8")
    except GammaError as e:
        say(f"error: {e}", error=True)
        return Outcome(1, math.inf)
    except OSError as e:
        say(f"error: {write_failure(e)}", error=True)
        return Outcome(1, math.inf)
    tracker = tracking.start(plain, run_name(plain), out, outputs,
                             resume=(prior or {}).get("mlflow"))
    return job_class(plain, out, tracker, t0, prior, outputs)


def _finished_already(plain: dict[str, Any], out: Path, outputs: Path,
                      prior: dict[str, Any]) -> Outcome:
    """``resume=true`` on a finished job: not run again. If its MLflow run was not ended (the
    job was killed after results.json said finished), the run is reopened and finished now."""
    cost = total_cost([r["best_cost"] for r in prior["layers"]])
    unit = f" {prior['objective_unit']}" if prior.get("objective_unit") else ""
    say(f"resume: {out} holds a finished job (total {cost:,.0f}{unit}); not run again")
    mlflow = prior.get("mlflow") or {}
    tr = plain.get("tracking") or {}
    if mlflow.get("run_id") and not mlflow.get("logged") and tr.get("enabled", True):
        tracker = tracking.start(plain, run_name(plain), out, outputs, resume=mlflow)
        with contextlib.suppress(GammaError):
            if tracker.connect():
                tracker.finish("finished")
        if tracker.error:
            say(f"warning: {tracker.error}", error=True)
        elif tracker.run_id:
            prior["mlflow"] = {**mlflow, "run_id": tracker.run_id, "logged": True}
            with contextlib.suppress(OSError):
                write_results(out / "results.json", prior)
            say(f"MLflow run {tracker.run_id} (finished) at {tracker.uri}")
    return Outcome(0, cost)
