"""Faults of the second audit (issue 18): numbers that were read wrong or overflowed, settings
that ended in a traceback, results.json files of the wrong shape, writes that fail. Each case
ends with ``error: ...`` naming the file or setting (exit 1) or is handled as valid input.

In-process jobs (Hydra's compose API, real cost model, tiny budgets) unless a case needs a
process of its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gamma.costmodel.evaluate import E_OVERFLOW, evaluate
from gamma.errors import GammaError, HardwareError, MappingFileError, ModelFileError
from gamma.hardware import Hardware
from gamma.limits import MAX_PRODUCT, MAX_SIZE, parse_int
from gamma.mapping import Cluster, Directive, Level, Mapping
from gamma.results.layout import read_results
from gamma.workloads.files import load_model
from gamma.workloads.layer import Layer, LayerError
from gamma.workloads.maestro_io import parse_dataflow

TINY = ["tracking.enabled=false", "budget=100",
        "layers=[2]"]
EDGE = Hardware(num_pes=168, l1_size=512, l2_size=108000, noc_bw=64, offchip_bw=64)


def job(tmp_path: Path, *overrides: str) -> tuple[int, dict | None]:
    """(exit code, results.json or None where the job wrote none) of an in-process job."""
    from hydra import compose, initialize_config_dir

    from gamma.search.job import execute
    from jobs import ROOT

    out = tmp_path / "run"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=[*TINY, *overrides])
    code = execute(cfg, out)
    try:
        return code, read_results(out / "results.json")
    except GammaError:  # none written, or one a test left malformed
        return code, None


# --- integers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["1_0", "10.0", "1e3", "0x10", "", " ", "١٠", "+", "--3"])
def test_parse_int_takes_digits_only(text):
    with pytest.raises(ValueError):
        parse_int(text)


def test_parse_int_reads_plain_integers():
    assert [parse_int(t) for t in ("10", " 7 ", "+3", "-2", "007")] == [10, 7, 3, -2, 7]


def test_a_csv_cell_with_an_underscore_is_an_error(tmp_path):
    """Python's int("1_0") is 10; the model file's cell is refused, by row and column."""
    path = tmp_path / "m.csv"
    path.write_text("K,C,Y,X,R,S,T\n64,3,8,8,1,1,1\n1_0,3,8,8,1,1,1\n")
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert str(e.value) == f"{path}: row 2 (line 3): column K: '1_0' is not an integer"


@pytest.mark.parametrize("value", ["1_0", "0x10", "1:30", "0o17"])
def test_a_yaml_size_that_yaml_reads_as_a_number_is_an_error(tmp_path, value):
    """YAML 1.1 reads 1_0 as 10, 0x10 as 16, 1:30 as 90: refused by layer and field."""
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\nlayers:\n  - {{type: CONV, K: 64, C: {value}, Y: 8, X: 8}}\n")
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert str(e.value) == f"{path}: layer 1 field 'C': must be a positive integer, got '{value}'"


# --- what the cost model can compute ------------------------------------------------------------
def test_a_layer_whose_product_overflows_int64_is_an_error(tmp_path):
    """K = C = 2^31 - 1 fit one by one but K*C*Y*X does not fit the kernel's int64: it was
    reported infeasible ("runtime < 1"); now the file, row and field say why."""
    path = tmp_path / "m.csv"
    path.write_text(f"K,C,Y,X,R,S,T\n{MAX_SIZE},{MAX_SIZE},8,8,1,1,1\n")
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    assert str(e.value).startswith(f"{path}: row 1 (line 2): column K: K*C*R*S*Y*X = "
                                   "295,147,904,904,474,918,976 exceeds 576,460,752,303,423,488 (2^59)")
    assert "int64" in str(e.value)


def test_the_largest_layer_allowed_is_evaluated_without_overflow():
    """A layer at the product limit: every output of a plain mapping is positive and the MAC
    count is the layer's own (an int64 overflow made it 0 and the energy negative)."""
    layer = Layer("CONV", K=1 << 21, C=1 << 20, Y=1 << 9, X=1 << 9, R=1, S=1)
    assert layer.work == MAX_PRODUCT
    m = Mapping((Level((Directive("Spatial", "K", 1, 1), Directive("Temporal", "C", 1 << 20, 1 << 20),
                        Directive("Temporal", "Y", 1 << 9, 1 << 9), Directive("Temporal", "X", 1 << 9, 1 << 9),
                        Directive("Temporal", "R", 1, 1), Directive("Temporal", "S", 1, 1))),))
    res = evaluate(layer, EDGE, [m])
    assert res.error[0] == 0
    assert res.macs[0] == layer.macs and res.runtime[0] >= layer.macs // 168
    assert res.energy[0] > 0
    with pytest.raises(LayerError, match="exceeds"):
        Layer("CONV", K=(1 << 21) + 1, C=1 << 20, Y=1 << 9, X=1 << 9)


def test_tiles_beyond_the_layer_whose_product_overflows_are_rejected():
    """A fixed dataflow's tiles may exceed the layer's dimensions; when their product is beyond
    int64's reach the cost model rejects the mapping (with the reason) instead of wrapping."""
    layer = Layer("CONV", K=64, C=64, Y=56, X=56, R=3, S=3)
    big = MAX_SIZE
    m = Mapping((Level((Directive("Spatial", "K", big, big), Directive("Temporal", "C", big, big),
                        Directive("Temporal", "Y", big, big), Directive("Temporal", "R", 3, 3),
                        Directive("Temporal", "S", 3, 3))),))
    ok = Mapping((Level((Directive("Spatial", "K", 1, 1), Directive("Temporal", "R", 3, 3),
                         Directive("Temporal", "S", 3, 3))),))
    res = evaluate(layer, EDGE, [m, ok, Mapping((Level((Directive("Spatial", "K", 10**23, 1),)),))])
    assert list(res.error) == [E_OVERFLOW, 0, E_OVERFLOW]
    assert "int64" in res.verdict(0)[1] and np.isnan(res.runtime[0])


def test_hardware_beyond_int64_is_an_error():
    with pytest.raises(HardwareError, match="num_pes.*at most 2,147,483,647"):
        Hardware(num_pes=10**30, l1_size=512, l2_size=1000, noc_bw=64, offchip_bw=64)


# --- dataflow directives ------------------------------------------------------------------------
@pytest.mark.parametrize("text, reason", [
    ("SpatialMap(1,1 K\nTemporalMap(1,1) C;", "1: expected ')' after 'SpatialMap(1,1' but found 'K'"),
    ("SpatialMap(1,1) K", "1: expected ';' after 'SpatialMap(1,1) K' but the input ended"),
    ("SpatialMap(1,1) K\nTemporalMap(1,1) C;", "2: expected ';' after 'SpatialMap(1,1) K' but found 'TemporalMap'"),
    ("SpatialMap 1 1 K;", "1: expected '(' after 'SpatialMap' but found '1'"),
    ("SpatialMap(1 1) K;", "1: expected ',' after 'SpatialMap(1' but found '1'"),
    ("SpatialMap(1,1) K;\nCluster(4,P)\nSpatialMap(1,1) C;", "3: expected ';' after 'Cluster(4,P)' but found 'SpatialMap'"),
    ("SpatialMap(Sz(K,1) K;", "1: expected ')' after 'Sz(K' but found ','"),
    ("SpatialMap(100000000000000000000000,1) K;", "1: the size after 'SpatialMap(' = "
                                                  "100,000,000,000,000,000,000,000 is too large"),
])
def test_an_incomplete_or_oversized_directive_is_an_error(text, reason):
    with pytest.raises(MappingFileError) as e:
        parse_dataflow(text, "df.m", layer=Layer("CONV", K=4, C=4, Y=4, X=4))
    assert str(e.value).startswith(f"df.m:{reason}")


def test_complete_directives_still_parse():
    m = parse_dataflow("SpatialMap(1,1) K;\nTemporalMap(Sz(C),Sz(C)) C;\nCluster(4,P);\n"
                       "SpatialMap(1,1) C; // note\n", layer=Layer("CONV", K=4, C=8, Y=4, X=4))
    assert [lv.cluster for lv in m.levels] == [None, Cluster(4, "P")]
    assert m.levels[0].directives[1].size == 8


def test_a_size_rule_beyond_the_limit_is_an_error(tmp_path):
    """A rule of 16 factors (C^16) overflowed int64 when packed (OverflowError)."""
    code, res = job(tmp_path, "optimizer=fixed", "dataflow=nvdla",
                    "dataflow.sizes.c=" + "*".join(["C"] * 16))
    assert code == 1 and res["status"] == "failed"
    assert res["error"].startswith("dataflow.nvdla: sizes.c = 'C*C*C*C*C*C*C*C*C*C*C*C*C*C*C*C' on "
                                   "layer CONV K64 C64 Y56 X56 R3 S3 = 79,228,162,514,264,337,593,543,950,336 "
                                   "is too large for the cost model")


# --- model files that include themselves ---------------------------------------------------------
def test_a_model_file_that_names_itself_is_an_error(tmp_path):
    path = tmp_path / "self.yaml"
    path.write_text("name: loop\npath: self.yaml\n")
    with pytest.raises(ModelFileError, match="a model file that includes itself"):
        load_model(path)


def test_a_cycle_of_model_files_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("path: b.yaml\n")
    (tmp_path / "b.yaml").write_text("path: a.yaml\n")
    with pytest.raises(ModelFileError) as e:
        load_model(tmp_path / "a.yaml")
    assert f"{tmp_path / 'a.yaml'} -> {tmp_path / 'b.yaml'} -> {tmp_path / 'a.yaml'}" in str(e.value)


# --- settings -------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    (["budget=inf"], "budget must be a non-negative integer, got inf"),
    (["mapspace.parallel_dims=[]"], "mapspace.parallel_dims must be a non-empty list"),
    (["optimizer=cma", "optimizer.options.scale=nan"], "optimizer.options.scale = nan: must be a finite number"),
    (["optimizer=cma", "optimizer.options.scale=abc"], "optimizer.options.scale = 'abc': must be a number"),
    (["optimizer=cma", "optimizer.options.scale=0"], "nevergrad's ParametrizedCMA cannot run with them"),
])
def test_a_bad_setting_is_an_error(tmp_path, capsys, overrides, message):
    code, _ = job(tmp_path, *overrides)
    assert code == 1
    assert message in capsys.readouterr().err


def test_no_parallel_dimension_for_a_depthwise_layer_is_an_error(tmp_path, capsys):
    code, res = job(tmp_path, "model=mobilenet_v2", "mapspace.parallel_dims=[K]")
    assert code == 1 and "no parallel dimension for a DSCONV layer" in res["error"]


# --- results.json of the wrong shape ---------------------------------------------------------------
def finished_run(tmp_path: Path) -> tuple[Path, dict]:
    """A small finished job (no tracking) and its results.json as read back."""
    code, res = job(tmp_path, "optimizer=random", "optimizer.batch=50")
    assert code == 0
    return tmp_path / "run", res


def raw(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize("change, reason", [
    (lambda d: [], "expected a record (a JSON object) with status and layers, got list []"),
    (lambda d: {**d, "layers": "oops"}, "layers: must be a list of layer records, got str 'oops'"),
    (lambda d: {**d, "status": "running", "unique": [{**d["unique"][0], "best_cost": "abc"}]},
     "layers[0] (layer 2): 'best_cost' must be a number or null, got str 'abc'"),
    (lambda d: {**d, "status": "running",
                "unique": [{k: v for k, v in d["unique"][0].items() if k != "history"}]},
     "layers[0] (layer 2): 'history' is missing"),
    (lambda d: {**d, "status": "running", "layers": [{"index": 2, "unique_index": 7}]},
     "layers[0]: unique_index 7 is not in the unique table"),
])
def test_resume_refuses_a_results_json_of_another_shape(tmp_path, capsys, change, reason):
    """``resume=true`` on a results.json that is valid JSON of the wrong shape was a traceback
    (TypeError, KeyError, ...): now ``error:`` names the file and the entry, exit 1."""
    run_dir, _ = finished_run(tmp_path)
    path = run_dir / "results.json"
    path.write_text(json.dumps(change(raw(run_dir))))
    before = path.read_text()
    capsys.readouterr()
    code, _ = job(tmp_path, "optimizer=random", "optimizer.batch=50", "resume=true")
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: resume: {path}: {reason}" in err
    assert path.read_text() == before  # nothing overwritten


def test_the_unique_table_holds_each_shape_once(tmp_path):
    """Layers 2 and 3 of ResNet-18 have one shape: results.json holds its search once and one
    short line per layer; read back, both layers have every field."""
    code, res = job(tmp_path, "optimizer=random", "optimizer.batch=50", "layers=[2,3]")
    assert code == 0
    data = raw(tmp_path / "run")
    assert data["layout"] == "unique" and len(data["unique"]) == 1
    assert data["layers"] == [{"index": 2, "unique_index": 1}, {"index": 3, "unique_index": 1}]
    assert "history" in data["unique"][0] and "index" not in data["unique"][0]
    assert [r["index"] for r in res["layers"]] == [2, 3]
    assert res["layers"][0]["history"] == res["layers"][1]["history"] == data["unique"][0]["history"]
    assert res["totals"]["latency_cycles"] == 2 * res["layers"][0]["best"]["runtime_cycles"]


def test_a_model_of_100000_layers_writes_a_small_results_json(tmp_path):
    """100,000 layers of one shape (as a job records them): results.json stays under 10 MB
    (it was 100 MB for 10,000 layers) and reads back to the same records."""
    from gamma.results.layout import read_results, write_results

    _, res = finished_run(tmp_path)
    first = res["layers"][0]
    big = {**res, "layers": [{**first, "index": i} for i in range(1, 100_001)]}
    path = tmp_path / "big.json"
    write_results(path, big)
    assert path.stat().st_size < 10_000_000
    back = read_results(path)
    assert len(back["layers"]) == 100_000 and back["layers"][-1] == {**first, "index": 100_000}


def test_results_json_written_before_the_unique_table_still_reads(tmp_path):
    """Every field in each layer record (results.json files of earlier versions)."""
    from gamma.results.layout import read_results

    _, res = finished_run(tmp_path)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(res, indent=1))
    assert read_results(path) == res


# --- writes that fail ------------------------------------------------------------------------------
def test_a_run_folder_that_cannot_be_created_is_an_error(tmp_path, capsys):
    """hydra.run.dir below a file (as a read-only or missing mount would be): error naming the
    path and the reason, exit 1, no traceback."""
    from hydra import compose, initialize_config_dir

    from gamma.search.job import execute
    from jobs import ROOT

    (tmp_path / "file").write_text("")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=TINY)
    assert execute(cfg, tmp_path / "file" / "run") == 1
    err = capsys.readouterr().err
    assert f"error: cannot write {tmp_path / 'file' / 'run'}: Not a directory" in err


def test_run_py_refuses_a_run_folder_it_cannot_write_before_hydra_starts(tmp_path):
    """Hydra's own log file in an unwritable run folder was a traceback (ValueError: Unable to
    configure handler 'file')."""
    import subprocess
    import sys

    from jobs import ROOT

    (tmp_path / "file").write_text("")
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *TINY,
                           f"hydra.run.dir={tmp_path / 'file' / 'run'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == f"error: cannot write {tmp_path / 'file' / 'run'}: Not a directory\n"


def test_a_file_size_limit_ends_the_job_failed_with_its_last_results(tmp_path):
    """A file-size limit (ulimit -f) hit while results.json grows: ``error:`` names the file
    and the reason, exit 1, no traceback; results.json keeps its last complete version."""
    import resource
    import subprocess
    import sys

    from jobs import ROOT

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *TINY, "layers=[1,2,6,7]",
                           "optimizer=random", "optimizer.batch=50", f"hydra.run.dir={run_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"error: cannot write {run_dir / 'results.json'}: File too large" in proc.stderr
    data = raw(run_dir)  # the last version that fitted, complete
    assert data["status"] == "running" and len(json.dumps(data)) < 20_000
    assert not list(run_dir.glob("results.json.*.tmp"))


def test_a_full_disk_ends_the_job_failed_with_its_last_results(tmp_path, capsys, monkeypatch):
    """A disk that fills up after results.json's first write (ENOSPC, here from the kernel's
    /dev/full behind results.json's temporary file): ``error:`` names the file and the reason,
    exit 1; results.json keeps its last complete version, no temporary file is left."""
    import os
    import tempfile

    import gamma.results.layout as layout

    real_mkstemp = tempfile.mkstemp
    writes = []

    def filling_disk(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        writes.append(name)
        if len(writes) == 1:
            return fd, name
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(layout.tempfile, "mkstemp", filling_disk)
    code, _ = job(tmp_path)
    run_dir = tmp_path / "run"
    assert code == 1 and len(writes) > 1
    err = capsys.readouterr().err
    assert f"error: cannot write {run_dir / 'results.json'}: No space left on device" in err
    assert "Traceback" not in err
    assert raw(run_dir)["status"] == "running"  # the first write, complete
    assert not list(run_dir.glob("results.json.*.tmp"))


# --- MLflow: import, resume ------------------------------------------------------------------------
def store_runs(uri: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


@pytest.mark.parametrize("content, reason", [
    ("[]", "expected a record (a JSON object) with status and layers, got list []"),
    (None, "'best' is missing"),
])
def test_mlflow_import_checks_results_json_before_it_creates_a_run(tmp_path, capsys, content, reason):
    """mlflow_import on a results.json of the wrong shape: error, and no run in the store (a
    FINISHED run with no metrics used to block the import of the fixed folder)."""
    from gamma.tracking.writer import import_run

    run_dir, _ = finished_run(tmp_path)
    path = run_dir / "results.json"
    if content is None:
        data = raw(run_dir)
        del data["unique"][0]["best"]
        content = json.dumps(data)
    path.write_text(content)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(GammaError, match=re.escape(reason)):
        import_run(run_dir, "x", uri)
    assert not (tmp_path / "mlflow.db").exists() or store_runs(uri) == []


def test_mlflow_import_script_on_a_list_is_an_error(tmp_path):
    import subprocess
    import sys

    from jobs import ROOT

    run_dir, _ = finished_run(tmp_path)
    (run_dir / "results.json").write_text("[]")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "mlflow_import.py"), str(run_dir),
                           "--uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {run_dir / 'results.json'}: expected a record")


# --- arms of a comparison -----------------------------------------------------------------------
def test_settings_that_cannot_change_a_result_never_split_an_arm():
    """Jobs that differ only in resume, parallel.workers or tracking are one arm, and a job run
    again with them changed counts once (compare.py made three arms of one)."""
    from gamma.analysis import compare
    from gamma.search.labels import NO_EFFECT, job_label

    def run(run_id: str, seed: str, **extra: str) -> dict:
        params = {"optimizer.name": "random", "optimizer.batch": "50", "seed": seed,
                  "resume": "False", "parallel.workers": "1", "tracking.uri": "a", **extra}
        return {"run_id": run_id, "start_time": int(run_id[1:]), "params": params, "tags": {},
                "results": None, "status": "FINISHED", "error": None, "arm": {"label": "random"}}

    runs = [run("r1", "0"), run("r2", "1", resume="True"), run("r3", "2", **{"parallel.workers": "4"}),
            run("r4", "0", **{"parallel.workers": "2", "tracking.uri": "b"})]
    assert {k: len(v) for k, v in compare.split_arms(runs).items()} == {"random": 4}
    kept, left_out = compare.latest_runs(runs)
    assert sorted(r["run_id"] for r in kept) == ["r2", "r3", "r4"] and left_out == 1
    assert {"resume", "parallel", "tracking"} <= set(NO_EFFECT)
    assert job_label({"name": "random", "batch": 50}, {"name": "random", "batch": 50},
                     ["resume=true", "parallel.workers=4", "tracking.uri=x", "optima=o.json"]) == "random"


# --- limits where the time goes -------------------------------------------------------------------
def test_the_exhaustive_time_limit_holds_during_its_set_up():
    """A layer whose structure set-up alone took minutes (K = 10^6): the time limit stops it
    in the set-up, and the record says so."""
    from gamma.objectives.scalar import Objective
    from gamma.mapspace.space import MapSpace
    from gamma.optimizers.exhaustive import Exhaustive

    layer = Layer("CONV", K=10**6, C=512, Y=224, X=224, R=3, S=3)
    obj = Objective(MapSpace(layer, 168, 1, 2), EDGE, 10**6)
    Exhaustive(time_limit_s=0.5).optimize(obj, np.random.default_rng(0))
    rec = obj.report["exhaustive"]
    assert rec["stopped"] == "time limit 0.5 s reached while building the structures (set-up)"
    # only the warm start's GAMMA evaluations: the enumeration evaluated nothing
    assert rec["evaluations"] == rec["warm_start"]["evaluations"] == 2000
    assert obj.report["proven_optimal"] is False


def test_compare_against_a_server_that_does_not_answer_is_an_error(tmp_path):
    """compare.py --uri of a closed port was silent for 251 s, then a traceback: now one
    ``error:`` line with the URI and the reason (MLflow's retries bounded)."""
    import subprocess
    import sys

    from jobs import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare.py"), "--experiment", "x",
                           "--uri", "http://127.0.0.1:9", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == "error: MLflow tracking at http://127.0.0.1:9: [Errno 111] Connection refused\n"


def test_the_console_table_of_a_huge_model_has_a_row_per_shape():
    from gamma.results.console import print_table
    import io

    rec = {"index": 1, "unique_index": 0, "shape": "CONV K4 C4 Y4 X4 R1 S1", "best": None, "mapping": None}
    records = [{**rec, "index": i} for i in range(1, 1502)] + [{**rec, "index": 1502, "unique_index": 1}]
    out = io.StringIO()
    print_table({"layers": records, "totals": {"feasible": False, "layers": 1502, "infeasible_layers": [1],
                                               "compute_bound_cycles": 1}}, out)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("1     CONV K4 C4 Y4 X4 R1 S1 x1,501") and lines[2].startswith("1502")
    assert "1,502 layers: one row per unique shape" in lines[3]


# --- signals and kills ---------------------------------------------------------------------------
def start(args: list[str], env: dict | None = None):
    import os
    import subprocess
    import sys

    from jobs import ROOT

    env = {k: v for k, v in (env or os.environ).items() if k != "GAMMA_MLFLOW_PARENT"}
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("after", [0.4, 1.0])
def test_sigint_while_python_imports_exits_130_without_a_traceback(tmp_path, after):
    """Ctrl-C within the first second (imports, Hydra's start) was a KeyboardInterrupt
    traceback: now exit 130 and one line. (Before Python runs run.py, in its own start-up, the
    first ~0.1 s, nothing of ours can catch it.)"""
    import signal
    import time

    proc = start(["tracking.enabled=false", f"hydra.run.dir={tmp_path / 'run'}"])
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def wait_until(predicate, proc, timeout: float = 120) -> None:
    """Poll ``predicate`` until it holds (while ``proc``, if any, runs)."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc is None or proc.poll() is None, proc.stderr.read()
        try:
            if predicate():
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_mlflow_run_id_reaches_results_json_while_the_job_runs(tmp_path):
    """The run id was written only at the end, so a job killed by SIGKILL resumed into a second
    run: now it is in results.json while the job runs, the run it names exists (ended KILLED
    by the helper when the job vanished), and ``resume=true`` reopens that run."""
    import os
    import signal

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dir = tmp_path / "run"
    proc = start(["optimizer=random", "optimizer.batch=100", "budget=200000",
                  f"hydra.run.dir={run_dir}"], dict(os.environ, MLFLOW_TRACKING_URI=uri))
    wait_until(lambda: raw(run_dir)["mlflow"]["run_id"], proc)
    data = raw(run_dir)
    assert data["status"] == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    client = MlflowClient(uri)
    wait_until(lambda: client.get_run(data["mlflow"]["run_id"]).info.status == "KILLED", proc=None)


def test_a_finished_job_whose_mlflow_run_was_not_ended_is_ended_on_resume(tmp_path, capsys):
    """SIGKILL after results.json said finished but before the MLflow run was ended: the run
    stayed KILLED for good. ``resume=true`` (not run again) reopens it and ends it FINISHED."""
    from mlflow.tracking import MlflowClient

    from gamma.search.job import _finished_already, plain_config
    from gamma.results.layout import write_results

    run_dir, res = finished_run(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("gamma")
    run_id = client.create_run(exp).info.run_id
    client.set_terminated(run_id, "KILLED")
    res["mlflow"] = {"uri": uri, "run_id": run_id}  # what such a kill leaves
    write_results(run_dir / "results.json", res)
    from hydra import compose, initialize_config_dir
    from jobs import ROOT

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = plain_config(compose("config", overrides=["budget=100", "layers=[2]", "optimizer=random",
                                                        "optimizer.batch=50", f"tracking.uri={uri}"]))
    outcome = _finished_already(cfg, run_dir, tmp_path, read_results(run_dir))
    assert outcome.code == 0 and f"MLflow run {run_id} (finished)" in capsys.readouterr().out
    assert client.get_run(run_id).info.status == "FINISHED"
    assert read_results(run_dir)["mlflow"]["logged"] is True


def test_ctrl_c_to_a_joblib_sweep_ends_every_job_killed(tmp_path):
    """Ctrl-C to a sweep's launcher (a joblib traceback, jobs left running): exit 130, no
    traceback, the running jobs ``killed`` with their finished layers, the job not started
    skipped. (Their MLflow runs end as the jobs do; the sweep's parent run KILLED.)"""
    import signal

    sweep = tmp_path / "sweep"
    proc = start(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2",
                  "optimizer=random", "optimizer.batch=100", "budget=30000", "layers=[1,2,6,7,8]",
                  "tracking.enabled=false", f"hydra.sweep.dir={sweep}"])
    wait_until(lambda: len([f for f in sweep.glob("*/results.json") if json.loads(f.read_text())["layers"]]) == 2,
               proc, timeout=240)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    results = [read_results(f) for f in sweep.glob("*/results.json")]
    assert len(results) == 2 and all(r["status"] == "killed" and r["layers"] for r in results)
    assert "skipped: the sweep was interrupted (Ctrl-C)" in err
