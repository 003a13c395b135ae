"""MAESTRO file reading/writing: byte-exact against the reference cases, round trips, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gamma.costmodel.reference_cases import read_cases
from gamma.errors import MappingFileError
from gamma.workloads.maestro_io import (
    foreign_dims,
    format_dataflow,
    format_maestro_file,
    format_maestro_input,
    parse_dataflow,
    parse_maestro_file,
    read_mapping_file,
)
from gamma.mapping import DIMS, Cluster, Directive, Level, Mapping
from gamma.workloads.layer import Layer

#: The public MAESTRO reference cases (see tests/data/README.md).
CASES = list(read_cases(Path(__file__).resolve().parent / "data" / "maestro_public.jsonl.gz"))
LAYER_FIELDS = ("type", "K", "C", "Y", "X", "R", "S", "M", "N", "stride_y", "stride_x", "name")


def fields(layer: Layer) -> dict[str, Any]:
    return {f: getattr(layer, f) for f in LAYER_FIELDS}


def case_layer(case: dict[str, Any], name: str = "") -> Layer:
    return Layer(**case["layer"], name=name)


def test_reference_file_has_all_cases() -> None:
    assert len(CASES) == 406


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_reference_case_round_trip(case: dict[str, Any]) -> None:
    mapping = Mapping.from_dict(case["mapping"])
    assert format_maestro_input(case_layer(case), mapping) == case["maestro_input"]
    ((layer, parsed),) = parse_maestro_file(case["maestro_input"])
    assert parsed == mapping
    assert fields(layer) == fields(case_layer(case, "L0"))


# --- round trip of random mappings ------------------------------------------------------------

directives = st.builds(Directive, st.sampled_from(["Spatial", "Temporal"]), st.sampled_from(DIMS),
                       st.integers(1, 4096), st.integers(1, 4096))
dir_lists = st.lists(directives, min_size=1, max_size=7).map(tuple)
clusters = st.builds(Cluster, st.integers(1, 1024), st.sampled_from(["P", "L"]))
mappings = st.builds(
    lambda top, rest: Mapping((Level(top),) + tuple(Level(ds, c) for c, ds in rest)),
    dir_lists, st.lists(st.tuples(clusters, dir_lists), max_size=2))


@settings(max_examples=300, deadline=None)
@given(mappings)
def test_dataflow_round_trip(m: Mapping) -> None:
    assert parse_dataflow(format_dataflow(m)) == m
    assert parse_dataflow("Dataflow {\n" + format_dataflow(m) + "}\n") == m


def test_format_dataflow_lines() -> None:
    m = Mapping((Level((Directive("Spatial", "K", 4, 4),)),
                 Level((Directive("Temporal", "Y'", 1, 1),), Cluster(5, "P"))))
    assert format_dataflow(m) == "SpatialMap(4,4) K;\nCluster(5,P);\nTemporalMap(1,1) Y';\n"
    assert format_dataflow(Mapping(())) == ""


# --- parser features ------------------------------------------------------------------------

FEATURES = """\
// a comment line
Constant T 8;   // tile
Network Net {
  Layer conv1 {
    Type: CONV
    Stride { X: 2, Y: 2 }
    Dimensions { K: 64, C: 3, R: 7, S: 7, Y': 10, X': 12 }   // outputs given
    Dataflow {
      SpatialMap(T,T) K;    // comment after a directive
      TemporalMap(Sz(R),Sz(R)) R;
      TemporalMap(Sz(S), 1) S;
      TemporalMap(Sz(Y'),Sz(Y')) Y';
      Cluster(T, L);
      SpatialMap(1,1) C;
    }
  }
  Layer L1 {
    Type: DSCONV
    Dimensions { C: 32, Y: 14, X: 14, R: 3, S: 3 }
    Dataflow {
    }
  }
  Layer fc {
    Type: GEMM
    Dimensions { M: 64, N: 256, K: T }
    Dataflow { SpatialMap(1,1) M; TemporalMap(Sz(K),Sz(K)) K; }
  }
  Layer nodf { Type: CONV Dimensions { K: 2 } }
}
"""


def test_features() -> None:
    (l0, m0), (l1, m1), (l2, m2), (l3, m3) = parse_maestro_file(FEATURES)
    assert fields(l0) == fields(Layer("CONV", K=64, C=3, Y=16, X=18, R=7, S=7, stride_y=2,
                                      stride_x=2, name="conv1"))
    assert m0 == Mapping((
        Level((Directive("Spatial", "K", 8, 8), Directive("Temporal", "R", 7, 7),
               Directive("Temporal", "S", 7, 1), Directive("Temporal", "Y'", 10, 10))),
        Level((Directive("Spatial", "C", 1, 1),), Cluster(8, "L"))))
    assert fields(l1) == fields(Layer("DSCONV", C=32, Y=14, X=14, R=3, S=3, name="L1"))
    assert m1 is m0  # empty Dataflow reuses the previous layer's
    assert fields(l2) == fields(Layer("GEMM", M=64, N=256, K=8, name="fc"))
    assert m2 == Mapping((Level((Directive("Spatial", "M", 1, 1), Directive("Temporal", "K", 8, 8))),))
    assert l3.name == "nodf" and m3 is None


def test_multi_layer_round_trip_and_files(tmp_path: Path) -> None:
    pairs = [(l, m) for l, m in parse_maestro_file(FEATURES) if m is not None]
    text = format_maestro_file(pairs, network="Net")
    assert "Dimensions { K: 1, C: 32, Y: 14, X: 14, R: 3, S: 3 }" in text
    again = parse_maestro_file(text)
    assert [(fields(l), m) for l, m in again] == [(fields(l), m) for l, m in pairs]
    path = tmp_path / "net.m"
    path.write_text(text)
    assert [m for _, m in read_mapping_file(path)] == [m for _, m in pairs]
    assert [m for _, m in parse_maestro_file(str(path))] == [m for _, m in pairs]


def test_unnamed_layers_get_index_names() -> None:
    m = parse_dataflow("SpatialMap(1,1) K;")
    text = format_maestro_file([(Layer("CONV", K=4), m), (Layer("CONV", K=8), m)])
    assert "Layer L0 {" in text and "Layer L1 {" in text


def test_parse_dataflow_sz_needs_layer() -> None:
    layer = Layer("CONV", K=16, Y=9, R=3)
    assert parse_dataflow("TemporalMap(Sz(Y'),1) Y';", layer=layer).levels[0].directives[0].size == 7
    with pytest.raises(MappingFileError, match="Sz"):
        parse_dataflow("TemporalMap(Sz(K),1) K;")


# --- errors ---------------------------------------------------------------------------------

HEAD = "Network N0 {\nLayer L0 {\nType: CONV\nDimensions { K: 4, C: 4, Y: 8, X: 8, R: 3, S: 3 }\n"


@pytest.mark.parametrize(("text", "line", "reason"), [
    (HEAD + "Dataflow {\nSpatialMap(x,1) K;\n}\n}\n}\n", 6,
     "expected a number after 'SpatialMap(' but found 'x'"),
    (HEAD + "Dataflow {\nSpatialMap(1,1) K;\nTemporalMap(1,1) Q;\n}\n}\n}\n", 7,
     "unknown dimension 'Q' in TemporalMap"),
    (HEAD + "Dataflow {\nSpatialMap(1,1) K;\n", 6, "unterminated block 'Dataflow' opened at line 5"),
    (HEAD + "Dataflow {\nSpatialMap(1,1) K;\n}\n}\n", 8, "unterminated block 'Network N0' opened at line 1"),
    ("Network N0 {\nLayer L0 {\nType: CONV\nDataflow {\n}\n}\n}\n", 2, "missing Dimensions in layer L0"),
    ("Network N0 {\nLayer L0 {\nDimensions { K: 4 }\n}\n}\n", 2, "missing Type in layer L0"),
    ("Network N0 {\nLayer L0 {\nType: TRCONV\n}\n}\n", 3, "layer type 'TRCONV' (layer L0) is not supported"),
    ("Network N0 {\nLayer L0 {\nType: FOO\n}\n}\n", 3, "unknown layer type 'FOO'"),
    ("Network N0 {\nLayer L0 {\nType: CONV\nDimensions { K: 4, Q: 2 }\n}\n}\n", 4,
     "unknown dimension 'Q' in Dimensions"),
    ("Network N0 {\nLayer L0 {\nType: CONV\nDimensions { K: 4 }\nStride { X: 2, Y: 2 }\n}\n}\n", 5,
     "Stride must come before Dimensions in layer L0"),
    ("Network N0 {\nLayer L0 {\nType: CONV\nDimensions { Y: 4, Y': 2 }\n}\n}\n", 4,
     "give either Y or Y' in Dimensions of layer L0, not both"),
    (HEAD + "Dataflow {\nCluster(4,Z);\n}\n}\n}\n", 6,
     "expected a cluster type (P or L) after 'Cluster(4,' but found 'Z'"),
    (HEAD + "Dataflow {\nSpatialMap(0,1) K;\n}\n}\n}\n", 6, "needs a positive size but got 0"),
    (HEAD + "Dataflow {\nSpatialMap(1,1) K;\nLayer L1 {\n", 7, "unexpected 'Layer' in Dataflow"),
    ("Constant A 2;\nConstant A 3;\nNetwork N0 {\n}\n", 2, "Constant 'A' is defined twice"),
    ("Layer L0 {\n}\n", 1, "expected 'Network' but found 'Layer'"),
    ("", 1, "expected 'Network' but the input ended"),
    ("Network N0 {\n}\n}\n", 3, "unexpected '}' after the end of Network N0"),
    (HEAD + "Dimensions { K: 4 }\n}\n}\n", 5, "Dimensions is given twice in layer L0 (first at line 4)"),
    ("Network N0 {\nLayer L0 {\nType: CONV\nDimensions { Y: 2, R: 3 }\n}\n}\n", 4,
     "invalid layer L0: R: filter rows R=3 exceed input rows Y=2"),
    ("Network N0 {\nLayer L0 {\nType: GEMM\nStride { X: 2, Y: 1 }\nDimensions { M: 2 }\n}\n}\n", 4,
     "invalid layer L0: stride_x: GEMM layers use only M, N, K"),
])
def test_errors(text: str, line: int, reason: str) -> None:
    with pytest.raises(MappingFileError) as info:
        parse_maestro_file(text, source="net.m")
    e = info.value
    assert (e.source, e.line) == ("net.m", line)
    assert reason in e.reason and f"net.m:{line}: " in str(e)


def test_parse_dataflow_errors() -> None:
    with pytest.raises(MappingFileError, match=r"^df:2: unknown dimension 'Z' in SpatialMap"):
        parse_dataflow("SpatialMap(1,1) K;\nSpatialMap(1,1) Z;", source="df")
    with pytest.raises(MappingFileError, match=r"^<string>:1: unexpected 'Dimensions' in Dataflow"):
        parse_dataflow("Dimensions { K: 1 }")


def test_missing_file_is_a_mapping_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.m"
    with pytest.raises(MappingFileError, match="nope.m: cannot read the mapping file"):
        read_mapping_file(path)


def test_foreign_dims_name_what_a_layer_type_lacks() -> None:
    """A depthwise layer has no K (MAESTRO: "Dimension K not found"); GEMM only M, N, K. Every
    public reference case names only its layer type's dimensions."""
    m = parse_dataflow("SpatialMap(1,1) C; TemporalMap(1,1) K; Cluster(2,P); SpatialMap(1,1) Y'; "
                       "TemporalMap(1,1) K; TemporalMap(1,1) M;")
    assert foreign_dims("DSCONV", m) == ["K", "M"]
    assert foreign_dims("CONV", m) == ["M"]
    assert foreign_dims("GEMM", m) == ["C", "Y'"]
    for case in CASES:
        ((layer, mapping),) = parse_maestro_file(case["maestro_input"])
        assert foreign_dims(layer.type, mapping) == [], case["id"]
