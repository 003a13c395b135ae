"""Settings that make no sense end the job with ``error: ...`` naming the setting, exit code 1 and
no traceback. Every optimizer's constructor checks its settings; the job builds the optimizer
before searching. Each bad setting runs as run.py's job (in this process, through Hydra's
compose API and the job's own error handling); two of them also through run.py as a user runs
it (a subprocess), which adds only the command line around the same job."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobs import run_inprocess

ROOT = Path(__file__).resolve().parents[1]
JOB = ["tracking.enabled=false", "layers=[2]", "budget=50"]

#: (overrides, what stderr must say after "error: ")
BAD = {
    "elite_above_parents": (["optimizer.selection.elite_ratio=0.5"],
                            "optimizer.selection.elite_ratio = 0.5: must not exceed selection.parents_ratio (0.4)"),
    "rate_below_0": (["optimizer.operators.crossover.rate=-0.1"],
                     "optimizer.operators.crossover.rate = -0.1: must be in [0, 1]"),
    "rate_above_1": (["optimizer.operators.mutation.rate=1.5"],
                     "optimizer.operators.mutation.rate = 1.5: must be in [0, 1]"),
    "structure_rate_above_1": (["optimizer.operators.structure.rate=2"],
                               "optimizer.operators.structure.rate = 2: must be in [0, 1]"),
    "structure_unknown_setting": (["+optimizer.operators.structure.loci=2"],
                                  "optimizer.operators.structure.loci = 2: unknown setting"),
    "population_1": (["optimizer.population=1"], "optimizer.population = 1: must be at least 2"),
    "loci_0": (["optimizer.operators.mutation.loci=0"],
               "optimizer.operators.mutation.loci = 0: must be at least 1"),
    "parents_ratio_0": (["optimizer.selection.parents_ratio=0"],
                        "optimizer.selection.parents_ratio = 0: must be in (0, 1]"),
    "enabled_not_bool": (["optimizer.operators.aging.enabled=maybe"],
                         "optimizer.operators.aging.enabled = 'maybe': must be true or false"),
    "operator_not_a_mapping": (["optimizer.operators.mutation=false"],
                               "optimizer.operators.mutation = False: must be a mapping"),
    "unknown_selection": (["optimizer.selection.name=tournament"],
                          "optimizer.selection.name = 'tournament': unknown selection"),
    "random_batch_0": (["optimizer=random", "optimizer.batch=0"], "optimizer.batch = 0: must be at least 1"),
    "stdga_unknown_nevergrad_name": (["optimizer=stdga", "optimizer.optimizer=foo"],
                                     "optimizer.optimizer = 'foo': nevergrad has no optimizer"),
    "pso_batch_0": (["optimizer=pso", "optimizer.batch=0"], "optimizer.batch = 0: must be at least 1"),
    "cma_unknown_option": (["optimizer=cma", "+optimizer.options.nosuch=1"],
                           "optimizer.options = {'scale': 3.0, 'random_init': True, 'nosuch': 1}: "
                           "not accepted by nevergrad's ParametrizedCMA"),
    "de_options_on_a_registry_instance": (["optimizer=de", "optimizer.options={popsize:40}"],
                                          "optimizer.options = {'popsize': 40}: nevergrad's 'DE' takes no options"),
    "tbpsa_unknown_nevergrad_name": (["optimizer=tbpsa", "optimizer.optimizer=NoSuchTBPSA"],
                                     "optimizer.optimizer = 'NoSuchTBPSA': nevergrad has no optimizer"),
    "bo_surrogate_gp": (["optimizer=bo", "optimizer.surrogate=GP"],
                        "optimizer.surrogate = 'GP': choose from ET, RF"),
    "bo_candidates_below_batch": (["optimizer=bo", "optimizer.candidates=10"],
                                  "optimizer.candidates = 10: must be at least optimizer.batch (500)"),
    "bo_local_fraction_2": (["optimizer=bo", "optimizer.local_fraction=2"],
                            "optimizer.local_fraction = 2: must be in [0, 1]"),
}


def check_refused(code: int, out: str, err: str, message: str) -> None:
    """Exit 1, ``error: message`` on stderr, no traceback, and no layer searched."""
    assert code == 1, err
    assert f"error: {message}" in err
    assert "Traceback" not in err and "Traceback" not in out
    assert "layer   2" not in out  # refused before any search


@pytest.mark.parametrize("case", list(BAD))
def test_bad_setting_is_a_clear_error(case: str, tmp_path: Path, capsys) -> None:
    overrides, message = BAD[case]
    code, _ = run_inprocess([*JOB, *overrides], tmp_path)
    captured = capsys.readouterr()
    check_refused(code, captured.out, captured.err, message)


@pytest.mark.parametrize("case", ["elite_above_parents", "cma_unknown_option"])
def test_bad_setting_from_the_command_line(case: str, tmp_path: Path) -> None:
    overrides, message = BAD[case]
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *JOB, *overrides,
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    check_refused(proc.returncode, proc.stdout, proc.stderr, message)
