"""Every MAESTRO mapping file a job writes (mappings/layer_NN.m) names only dimensions its layer
type has, for CONV and DSCONV layers and every kind of optimizer: MAESTRO stops with
"Dimension K not found" on a K directive of a depthwise layer. The files are read back with
gamma's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamma.workloads.maestro_io import foreign_dims, read_mapping_file
from tests.jobs import run_inprocess

#: MobileNet-V2's stem (CONV) and first depthwise layer (DSCONV K1 C32 Y112 X112 R3 S3).
LAYERS = "layers=[1,2]"
JOBS = {
    "fixed-nvdla": ["optimizer=fixed", "dataflow=nvdla"],
    "fixed-eyeriss": ["optimizer=fixed", "dataflow=eyeriss"],
    "fixed-shidiannao": ["optimizer=fixed", "dataflow=shidiannao"],
    "gamma": ["budget=600"],
    "random": ["optimizer=random", "budget=600"],
    "exhaustive": ["optimizer=exhaustive"],
}


#: (job, system); exhaustive on S2 only (its S3 proof of the 224x224 stem takes minutes).
CASES = [(job, system) for job in JOBS for system in ("s2", "s3") if (job, system) != ("exhaustive", "s3")]


@pytest.mark.parametrize("job, system", CASES)
def test_every_written_mapping_file_names_only_dimensions_of_its_layer_type(tmp_path: Path, job: str,
                                                                            system: str) -> None:
    code, res = run_inprocess(["model=mobilenet_v2", LAYERS, f"system={system}", *JOBS[job],
                               "tracking.enabled=false", f"optima={tmp_path / 'optima.json'}"],
                              tmp_path / "run")
    assert code == 0
    files = sorted((tmp_path / "run" / "mappings").glob("layer_*.m"))
    assert [f.name for f in files] == ["layer_01.m", "layer_02.m"]
    types = []
    for f in files:
        ((layer, mapping),) = read_mapping_file(f)
        assert mapping is not None and mapping.levels
        assert foreign_dims(layer.type, mapping) == [], (f.name, layer.type)
        types.append(layer.type)
    assert types == ["CONV", "DSCONV"]
    assert [r["feasible"] for r in res["layers"]] == [True, True]
