"""One mapping-search job: every selected layer of a model on one platform, one optimizer.

The search itself is :mod:`gamma.api` (in memory); a :class:`Job` adds the files, the console
output (copied to Hydra's job log) and the MLflow run around it. Each unique layer shape is
searched once with a budget of ``budget`` cost-model evaluations and its own generator
``np.random.default_rng([seed, unique_index])`` (``unique_index`` counts the model's unique
shapes, so a layer's result does not depend on ``layers``). Every layer then takes its shape's
result. results.json (see :mod:`gamma.results`) is rewritten after each unique layer.
``parallel.workers`` > 1 searches that many unique layers at once (:func:`gamma.api.search_parallel`);
``resume=true`` keeps the layers an earlier run left in the same folder (:func:`prior_results`).
Units: cycles, nJ, elements, seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gamma import optima, pareto_report, report, results as R, tracking
from gamma.api import (LayerResult, Setup, build_setup, search_parallel, search_unique,
                       total_cost, workers_of)
from gamma.dataflows import dataflow_label, dataflow_name
from gamma.errors import GammaError
from gamma.pareto_objective import adapt_config, is_pareto, unit_of

#: The job log (Hydra's run.log); see :func:`say`.
JOB_LOG = logging.getLogger("gamma.job")


def plain_config(cfg: Any) -> dict[str, Any]:
    """A Hydra/OmegaConf config as plain, resolved dicts and lists."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def say(text: str, error: bool = False) -> None:
    """Print ``text`` (stdout, or stderr for an error) and copy it to the job log: under Hydra
    the logger ``gamma.job`` writes only to ``<run folder>/run.log``
    (conf/hydra/job_logging/gamma.yaml); elsewhere it has no handler and this just prints."""
    print(text, file=sys.stderr if error else sys.stdout, flush=True)
    JOB_LOG.log(logging.ERROR if error else logging.INFO, text)


def unique_result(u: int, res: LayerResult) -> R.UniqueResult:
    """What results.json records of unique layer ``u``'s search."""
    return R.UniqueResult(u, res.layer, res.summary, res.cost if res.feasible else None,
                          res.outputs, res.mapping, R.history_record(res.history), res.search_s,
                          res.front)


@dataclass
class Outcome:
    """How a job ended: the process exit code and the job's objective value."""

    code: int  # 0 done, 1 bad input, 130 interrupted (SIGINT), 143 terminated (SIGTERM)
    cost: float  # sum over layers of the best cost (objective's unit); inf if any is infeasible


class Job:
    """A job's state: its config, output folder, results dict and tracker."""

    def __init__(self, cfg: dict[str, Any], out_dir: Path, tracker: tracking.Tracker,
                 t0: float, prior: dict[str, Any] | None = None,
                 outputs: Path = tracking.DEFAULT_OUTPUTS) -> None:
        """``prior``: the results.json of an unfinished earlier run of this job (``resume``),
        whose layers are kept; ``outputs``: where the cache of proven optima lives (unless
        ``optima`` names a file)."""
        self.cfg, self.out_dir, self.tracker, self.t0 = cfg, out_dir, tracker, t0
        self.optima_file = optima.cache_file(cfg, outputs)
        self.results: dict[str, Any] = {
            "status": "running", "label": job_label_of(cfg), "model": cfg["model"].get("name"),
            "system": cfg["system"]["name"],
            "platform": cfg["platform"]["name"], "optimizer": cfg["optimizer"]["name"],
            "objective": cfg["objective"]["name"],
            "objective_unit": unit_of(cfg),
            "seed": cfg["seed"], "budget": cfg["budget"],
            "guard": bool(cfg.get("guard", True)) and cfg.get("paper_mode") is not True,
            "paper_mode": cfg.get("paper_mode") is True, "dataflow": dataflow_name(cfg),
            "hardware": None, "selected_layers": None,
            "space": optima.space_context(cfg),
            "mlflow": {"uri": tracker.uri, "run_id": None} if tracker.uri else None,
            "wall_s": 0.0, "costmodel_s": 0.0, "search_s": 0.0,
            "totals": R.compute_totals([]), "layers": [],
        }
        if is_pareto(cfg):
            self.results["objective_metrics"] = list(cfg["objective"].get("metrics") or [])
        if prior is not None:
            self.results["layers"] = list(prior.get("layers") or [])
            self.t0 -= float(prior.get("wall_s") or 0.0)  # wall_s counts both runs

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
            say("skipped operators (no layer): " + ", ".join(
                f"{op} {n}" for op, n in setup.model.skipped_ops.items()))
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
                res = search_unique(self.cfg, setup, u, bar)
            self.add(setup, unique_result(u, res))

    def add(self, setup: Setup, res: R.UniqueResult, extra: dict[str, Any] | None = None) -> None:
        """Record a finished unique layer for each of its layers (each record updated with
        ``extra``, e.g. the two-stage entries); save; tell the tracker."""
        records = [{**R.layer_record(i, res, setup.model.name), **(extra or {})}
                   for i in setup.layers_of(res.unique_index)]
        self.against_optimum(records)
        self.results["layers"] = sorted(self.results["layers"] + records, key=lambda r: r["index"])
        mdir = self.out_dir / "mappings"
        mdir.mkdir(exist_ok=True)
        for r in records:
            if r["mapping_text"] is not None:
                (mdir / f"layer_{r['index']:02d}.m").write_text(r["mapping_text"], encoding="utf-8")
        self.save()
        say(report.layer_line(records[0], res.search_s))
        if "proven_optimal" in records[0]:
            say(report.proof_line(records[0]))
        self.tracker.layer_done()

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
        later): results are complete, so it does not change the exit code."""
        self.results["status"] = status
        with contextlib.suppress(GammaError):  # kept in tracker.error
            if self.tracker.connect():
                self.results["mlflow"]["run_id"] = self.tracker.run_id
        if self.tracker.error:
            self.results["mlflow"]["error"] = self.tracker.error
        self.save()
        if self.results["layers"]:
            table = io.StringIO()
            report.print_table(self.results, table)
            say("\n" + table.getvalue().rstrip("\n"))
        report.plot_convergence(self.results, self.out_dir / "convergence.png")
        pareto_report.write_artifacts(self.results, self.out_dir)
        say(f"results: {self.results_path}")
        with contextlib.suppress(GammaError):
            self.tracker.finish(status)
        if self.tracker.error:
            self.results["mlflow"]["error"] = self.tracker.error
            self.save()
            say(f"warning: {self.tracker.error}; results are complete but not in MLflow (log them "
                f"later: python scripts/mlflow_import.py {shlex.quote(str(self.out_dir))} [--uri URI])",
                error=True)
        elif self.tracker.run_id:
            say(f"MLflow run {self.tracker.run_id} ({status}) at {self.tracker.uri}")

    def cost(self) -> float:
        """The job's objective: the sum over its layers of the best cost; inf if a layer is
        infeasible or no layer was searched."""
        return total_cost([r["best_cost"] for r in self.results["layers"]])


def job_class_of(cfg: dict[str, Any]) -> type[Job]:
    """:class:`Job`, or for ``objective=two_stage`` the two-stage job (:mod:`gamma.twostage`)
    once its settings are checked."""
    if (cfg.get("objective") or {}).get("name") != "two_stage":
        return Job
    from gamma import twostage

    twostage.check(cfg)
    return twostage.make_job(Job)


def job_label_of(cfg: dict[str, Any]) -> str:
    """The job's label (run.py fills ``label``; where none is set, the optimizer's name and
    a fixed dataflow's, e.g. ``fixed nvdla``)."""
    if cfg.get("label"):
        return str(cfg["label"])
    flow = dataflow_label(cfg)
    return f"{cfg['optimizer']['name']} {flow}" if flow else str(cfg["optimizer"]["name"])


def run_name(cfg: dict[str, Any]) -> str:
    """The label first (MLflow's runs table cuts long names), then model, system, platform, seed."""
    where = "-".join(str(x) for x in (cfg["model"].get("name"), cfg["system"]["name"],
                                      cfg["platform"]["name"], f"s{cfg['seed']}"))
    return f"{job_label_of(cfg)} | {where}"


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a cluster scheduler or ``kill`` sends), raised in the job like Ctrl-C."""


#: Exit codes of an interrupted job: 128 + the signal number, as a shell reports them.
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


#: Set once this process got SIGTERM: a sweep's worker then skips the jobs it has not started.
TERMINATED = threading.Event()


def _raise_terminated(signum: int, frame: Any) -> None:
    TERMINATED.set()
    raise Terminated()


def was_terminated() -> bool:
    """Whether this process got SIGTERM (see :data:`TERMINATED`)."""
    return TERMINATED.is_set()


def note_terminated(signum: int, frame: Any) -> None:
    """SIGTERM handler between the jobs of a sweep's process: only note it (:data:`TERMINATED`)."""
    TERMINATED.set()


class _Signals:
    """The job's signal handling: while it searches, SIGTERM raises :class:`Terminated` (SIGINT
    raises KeyboardInterrupt as always); once it shuts down (final results.json, table, plot,
    MLflow run), further SIGINT/SIGTERM are only noted, so a second Ctrl-C cannot cut the final
    writes short. The previous handlers come back at the end. Signal handlers belong to the main
    thread: elsewhere (a job in a thread) nothing changes."""

    def __init__(self) -> None:
        self.saved: dict[int, Any] = {}
        self.late: int | None = None  # a signal that arrived during the shutdown

    def __enter__(self) -> "_Signals":
        if threading.current_thread() is threading.main_thread():
            self.saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            signal.signal(signal.SIGTERM, _raise_terminated)
        return self

    def shutting_down(self) -> None:
        """From now on note SIGINT/SIGTERM instead of raising."""
        for s in self.saved:
            signal.signal(s, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM:
            TERMINATED.set()
        if self.late is None:
            self.late = signum
            print("interrupted again: still writing results.json and the MLflow run (a few "
                  "seconds)", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self.saved.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def interrupted_code(e: BaseException | int) -> int:
    """The exit code of a job stopped by ``e`` (an exception or a signal number)."""
    if isinstance(e, Terminated) or e == signal.SIGTERM:
        return EXIT_SIGTERM
    return EXIT_SIGINT


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
        prior = json.loads(path.read_text(encoding="utf-8"))
        old = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise GammaError(f"resume: cannot read the earlier run in {out}: {e}") from None
    differ = [k for k in sorted(set(old) | set(cfg))
              if k not in RESUMABLE_CHANGES and old.get(k) != cfg.get(k)]
    if differ:
        raise GammaError(f"resume: {out} holds a job with other settings ({', '.join(differ)} "
                         "differ); resume with the same settings or use another run folder")
    return prior


def execute(cfg: Any, out_dir: str | Path, outputs: Path = tracking.DEFAULT_OUTPUTS) -> int:
    """Run the job of ``cfg`` writing to ``out_dir``; the process exit code (see :func:`run_job`)."""
    return run_job(cfg, out_dir, outputs).code


def run_job(cfg: Any, out_dir: str | Path, outputs: Path = tracking.DEFAULT_OUTPUTS) -> Outcome:
    """Run the job of ``cfg`` writing to ``out_dir``. Exit code 0 done, 1 on a
    :class:`GammaError` (printed as ``error: ...``), 130 on Ctrl-C (SIGINT), 143 on SIGTERM
    (both end results.json and the MLflow run as ``killed``); the cost is inf unless the job
    finished. A second SIGINT/SIGTERM while the job writes its final results is noted, not
    raised (the exit code then says interrupted, results.json keeps its status). Other
    exceptions propagate after the run is marked failed."""
    with _Signals() as signals:
        return _run_job(cfg, out_dir, outputs, signals)


def _run_job(cfg: Any, out_dir: str | Path, outputs: Path, signals: _Signals) -> Outcome:
    t0 = time.perf_counter()
    try:
        plain = plain_config(cfg)
    except Exception as e:  # noqa: BLE001 - omegaconf: an interpolation that does not resolve
        say(f"error: config: {e}", error=True)
        return Outcome(1, math.inf)
    note = adapt_config(plain)  # objective=pareto: GAMMA's selection (recorded in config.yaml)
    if note:
        say(note)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        job_class = job_class_of(plain)
        prior = prior_results(plain, out)
    except GammaError as e:
        say(f"error: {e}", error=True)
        return Outcome(1, math.inf)
    if prior is not None and prior.get("status") == "finished":
        cost = total_cost([r["best_cost"] for r in prior.get("layers") or []])
        unit = f" {prior['objective_unit']}" if prior.get("objective_unit") else ""
        say(f"resume: {out} holds a finished job (total {cost:,.0f}{unit}); not run again")
        return Outcome(0, cost)
    (out / "config.yaml").write_text(yaml.safe_dump(plain, sort_keys=False), encoding="utf-8")
    tracker = tracking.start(plain, run_name(plain), out, outputs,
                             resume=(prior or {}).get("mlflow"))
    job = job_class(plain, out, tracker, t0, prior, outputs)
    status, code = "failed", 1
    try:
        job.run()
        status, code = "finished", 0
    except GammaError as e:
        signals.shutting_down()
        say(f"error: {e}", error=True)
        job.results["error"] = str(e)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (Terminated)
        signals.shutting_down()
        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        say(f"{what}: results.json keeps the finished layers", error=True)
        status, code = "killed", interrupted_code(e)
    except BaseException as e:
        signals.shutting_down()
        job.results["error"] = f"{type(e).__name__}: {e}"
        job.finish("failed")
        raise
    signals.shutting_down()
    job.finish(status)
    if signals.late is not None and code == 0:
        code = interrupted_code(signals.late)
    return Outcome(code, job.cost() if code == 0 else math.inf)
