"""Model files: GAMMA CSV tables, our YAML format and Hydra ``model`` configs, read into a
:class:`~gamma.workloads.layer.Model` (ONNX graphs: :mod:`gamma.workloads.onnx`).

Units: every size is a count of elements (channels, rows, columns); MACs are multiply-accumulates.

Conventions, as in GAMMA and MAESTRO:

* ``Y`` and ``X`` are the **input** rows/cols, without padding. The output size is
  ``Yo = Y - R + 1`` and ``Xo = X - S + 1`` whatever the stride (MAESTRO's dimension table).
* **Strides.** GAMMA's CSV tables have no stride column and GAMMA runs MAESTRO at stride 1. We do
  the same by default. Our YAML model configs (``conf/model/*.yaml``) record each layer's real
  network stride as ``stride``; it is informational. :func:`load_model` and
  :func:`model_from_config` copy it into ``Layer.stride_y``/``stride_x`` only when called with
  ``apply_strides=True``. Otherwise every layer has stride 1.
* CSV type column ``T`` (GAMMA's conversion): 0 = FC, row ``O,I,0,0,0,0,0`` -> CONV with K=O, C=I,
  the rest 1; 1 = CONV; 2 = DSCONV (depthwise, K column is 1); 3 = GEMM, row ``M,N,K,0,0,0,3`` ->
  CONV with K=N, C=K, Y=M, X=R=S=1. FC and GEMM rows are GEMM-view layers (``Layer.gemm``: shown
  as ``GEMM M N K``, an FC row as M = 1, N = O, K = I). A native GEMM layer (type ``GEMM`` with
  M, N, K, which the map space does not search) can only come from a YAML file or from
  :meth:`Layer.from_dict`.

YAML model format (also the Hydra config group ``model``; ``model=resnet18`` selects one)::

    name: resnet18          # optional in a file (default: the file name without extension)
    path: null              # or a CSV/YAML file to read instead of ``layers``
    layers:
      - {type: CONV, K: 64, C: 3, Y: 224, X: 224, R: 7, S: 7, stride: 2}
      - {type: DSCONV, K: 1, C: 32, Y: 112, X: 112, R: 3, S: 3}
      - {type: GEMM, M: 512, N: 768, K: 768, as: CONV}

A layer may use the keys type, K, C, Y, X, R, S, M, N, stride (or stride_y and stride_x), name and
as; missing sizes default to 1. ``as: CONV`` on a GEMM layer makes it a GEMM-view layer, searched
and evaluated as the 1x1 CONV K = N, C = K, Y = M (as a CSV GEMM row); without it a GEMM layer is
native (MAESTRO's GEMM type).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from gamma.errors import ModelFileError
from gamma.limits import parse_int
from gamma.workloads.layer import Layer, LayerError, Model

#: CSV type column values.
CSV_TYPES: dict[int, str] = {0: "FC", 1: "CONV", 2: "DSCONV", 3: "GEMM"}


def layer_from_csv_row(row: Sequence[str | int], path: str | Path, row_number: int,
                       line: int | None = None) -> Layer:
    """Convert one GAMMA CSV row ``K,C,Y,X,R,S,T`` to a :class:`Layer` (stride 1), as GAMMA does.

    ``row_number`` is the 1-based data row (header excluded) and ``line`` the optional 1-based
    line in the file; both go into the :class:`ModelFileError` raised for a bad row.
    """
    where = f"row {row_number}" + (f" (line {line})" if line is not None else "")

    def fail(reason: str) -> ModelFileError:
        return ModelFileError(str(path), where, reason)

    if len(row) != 7:
        raise fail(f"expected 7 columns K,C,Y,X,R,S,T, got {len(row)}")
    values: list[int] = []
    for col, cell in zip("KCYXRST", row):
        text = str(cell).strip()
        try:
            values.append(parse_int(text))
        except ValueError:
            raise fail(f"column {col}: {text!r} is not an integer") from None
    kind = CSV_TYPES.get(values[6])
    if kind is None:
        raise fail(f"unknown layer type T={values[6]} (expected 0=FC, 1=CONV, 2=DSCONV, 3=GEMM)")
    names = {"FC": "OI", "GEMM": "MNK"}.get(kind, "KCYXRS")
    for i, col in enumerate("KCYXRS"):
        if i < len(names) and values[i] < 1:
            raise fail(f"column {names[i]}: must be a positive integer, got {values[i]}")
        if i >= len(names) and values[i] not in (0, 1):
            raise fail(f"{kind} (T={values[6]}) rows use only the columns {','.join(names)}; "
                       f"column {i + 1} must be 0 or 1, got {values[i]}")
    K, C, Y, X, R, S = values[:6]
    try:
        if kind == "FC":  # GEMM M = 1, N = O, K = I
            return Layer("CONV", K=K, C=C, gemm=True)
        if kind == "GEMM":  # M, N, K = K, C, Y columns
            return Layer("CONV", K=C, C=Y, Y=K, gemm=True)
        return Layer(kind, K=K, C=C, Y=Y, X=X, R=R, S=S)
    except LayerError as e:
        raise fail(f"column {e.field}: {e.reason}") from None


class StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, but a number is an integer only when written with the digits 0-9
    (YAML 1.1 also reads ``1_0`` as 10, ``0x10`` as 16 and ``1:30`` as 90): such text stays a
    string, which the layer check then refuses by field."""


def _strict_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    try:
        return parse_int(node.value)
    except ValueError:
        return str(node.value)


StrictLoader.add_constructor("tag:yaml.org,2002:int", _strict_int)

_MODEL_KEYS = ("name", "path", "layers")
_YAML_LAYER_KEYS = ("type", "K", "C", "Y", "X", "R", "S", "M", "N", "stride", "stride_y", "stride_x", "name",
                    "as")


def load_model(path: str | Path, apply_strides: bool = False, *,
               _including: tuple[Path, ...] = ()) -> Model:
    """Read a model from our YAML format (``.yaml``/``.yml``), an ONNX graph (``.onnx``, see
    :mod:`gamma.workloads.onnx`) or a GAMMA CSV table (anything else).

    Raises :class:`ModelFileError` naming the file, the row or layer, and the reason.
    ``apply_strides`` keeps the YAML ``stride`` values (CSV tables have none: stride 1).
    """
    p = Path(path).expanduser()
    if p.resolve() in _including:
        chain = " -> ".join(str(f) for f in (*_including, p.resolve()))
        raise ModelFileError(str(_including[-1]), "key 'path'",
                             f"names {path}, a model file that includes itself ({chain})")
    if p.suffix.lower() == ".onnx":
        from gamma.workloads.onnx import load_onnx

        return load_onnx(p, apply_strides, source=str(path))
    text = read_text_file(p, str(path))
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "file"
            raise ModelFileError(str(path), where, f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
        if not isinstance(data, Mapping):
            raise ModelFileError(str(path), "file", "expected a mapping with keys name, path, layers")
        return _model_from_mapping(data, str(path), apply_strides, default_name=p.stem,
                                   base_dir=p.parent, including=(*_including, p.resolve()))
    return Model(p.stem, tuple(_read_csv(text, str(path))))


def read_text_file(p: Path, source: str) -> str:
    """The text of a model file (UTF-8, a BOM allowed); a :class:`ModelFileError` for a missing
    file, a directory, an unreadable file or one that is not text (binary: NUL bytes or bytes
    that are not UTF-8)."""
    if not p.exists():
        raise ModelFileError(source, "file", "not found")
    if not p.is_file():
        raise ModelFileError(source, "file", "is not a file (a directory)" if p.is_dir()
                             else "is not a file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelFileError(source, "file", f"cannot read it: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ModelFileError(source, "not a text file",
                             f"byte 0x{data[e.start]:02x} at offset {e.start} is not UTF-8; "
                             "expected a CSV or YAML layer table") from None
    if "\x00" in text:
        raise ModelFileError(source, "not a text file",
                             f"NUL byte at offset {text.index(chr(0))}; expected a CSV or YAML layer table")
    return text


def model_from_config(cfg: Mapping[str, Any], apply_strides: bool = False) -> Model:
    """Build a model from a Hydra ``model`` config (or a plain dict): ``name`` plus either ``layers``
    (list of layer dicts) or ``path`` (a CSV/YAML/ONNX file). With a path and ``name`` unset,
    ``file`` or ``onnx``, the model takes the file's name."""
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(cfg):
            cfg = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    source = f"model config '{cfg.get('name')}'"
    return _model_from_mapping(cfg, source, apply_strides, default_name=None, base_dir=None)


def _model_from_mapping(data: Mapping[str, Any], source: str, apply_strides: bool,
                        default_name: str | None, base_dir: Path | None,
                        including: tuple[Path, ...] = ()) -> Model:
    """A model from a YAML mapping or a ``model`` config (``source`` names it in errors);
    ``including``: the model files that led here through ``path`` (a cycle is an error)."""
    for key in data:
        if key not in _MODEL_KEYS:
            raise ModelFileError(source, f"key '{key}'", f"unknown key; expected {', '.join(_MODEL_KEYS)}")
    name, path, layers = data.get("name"), data.get("path"), data.get("layers")
    if name is not None and not isinstance(name, str):
        raise ModelFileError(source, "key 'name'", f"must be a string, got {name!r}")
    if path == "???":
        example = "model=onnx model.path=net.onnx" if name == "onnx" else "model=file model.path=my.csv"
        raise ModelFileError(source, "key 'path'", f"is required (e.g. {example})")
    if path is not None and layers is not None:
        raise ModelFileError(source, "key 'path'", "give either 'path' or 'layers', not both")
    if path is not None:
        file = Path(str(path)).expanduser()
        if base_dir is not None and not file.is_absolute():
            file = base_dir / file
        model = load_model(file, apply_strides, _including=including)
        return model if name in (None, "file", "onnx") else Model(name, model.layers, model.skipped_ops)
    if layers is None:
        raise ModelFileError(source, "key 'layers'", "no layers: give 'layers' or 'path'")
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise ModelFileError(source, "key 'layers'", "must be a list of layer mappings")
    if not layers:
        raise ModelFileError(source, "key 'layers'", "empty model: the list has no layers")
    built = tuple(_layer_from_mapping(d, source, n, apply_strides) for n, d in enumerate(layers, 1))
    return Model(name or default_name or "model", built)


def _layer_from_mapping(d: Any, source: str, n: int, apply_strides: bool) -> Layer:
    """One YAML/config layer dict -> Layer; errors name ``layer n`` and the field."""
    if not isinstance(d, Mapping):
        raise ModelFileError(source, f"layer {n}", f"must be a mapping like {{type: CONV, K: 64, ...}}, got {d!r}")
    for key in d:
        if key not in _YAML_LAYER_KEYS:
            raise ModelFileError(source, f"layer {n} field '{key}'", f"unknown field; expected one of {', '.join(_YAML_LAYER_KEYS)}")
    if "type" not in d:
        raise ModelFileError(source, f"layer {n} field 'type'", "is required (CONV, DSCONV or GEMM)")
    if "stride" in d and ("stride_y" in d or "stride_x" in d):
        raise ModelFileError(source, f"layer {n} field 'stride'", "give 'stride' or 'stride_y'/'stride_x', not both")
    args = {k: v for k, v in d.items() if k != "stride"}
    if "stride" in d:
        args["stride_y"] = args["stride_x"] = d["stride"]
    for key in ("stride_y", "stride_x"):  # validate the informational stride, then drop it unless asked
        if key in args and (isinstance(args[key], bool) or not isinstance(args[key], int) or args[key] < 1):
            field_name = "stride" if "stride" in d else key
            raise ModelFileError(source, f"layer {n} field '{field_name}'", f"must be a positive integer, got {args[key]!r}")
        if not apply_strides:
            args.pop(key, None)
    if "name" in args:
        args["name"] = str(args["name"])
    try:
        return _gemm_as_conv(args) if "as" in args else Layer(**args)
    except LayerError as e:
        raise ModelFileError(source, f"layer {n} field '{e.field}'", e.reason) from None


def _gemm_as_conv(args: dict[str, Any]) -> Layer:
    """A YAML ``{type: GEMM, M, N, K, as: CONV}`` layer: the GEMM-view CONV K = N, C = K, Y = M
    (checked first as the native GEMM, so that a stray C or R is named)."""
    if args.pop("as") != "CONV":
        raise LayerError("as", "the only value is CONV (a GEMM searched as its 1x1 CONV form)")
    if args.get("type") != "GEMM":
        raise LayerError("as", f"only a GEMM layer can be searched as CONV, not {args.get('type')!r}")
    g = Layer(**args)
    return Layer("CONV", K=g.N, C=g.K, Y=g.M, name=g.name, gemm=True)


def _read_csv(text: str, source: str) -> list[Layer]:
    """Layers of a GAMMA CSV table (header row optional, blank lines skipped)."""
    rows = [(line, cells) for line, cells in enumerate(csv.reader(io.StringIO(text, newline="")), 1)
            if any(c.strip() for c in cells)]
    if rows and any(ch.isalpha() for ch in rows[0][1][0]):
        rows = rows[1:]  # header such as K,C,Y,X,R,S,T / M,N,K,0,0,0,T / O,I,0,0,0,0,T
    if not rows:
        raise ModelFileError(source, "file", "empty model: no layer rows")
    seen: dict[tuple[str, ...], Layer] = {}  # a repeated row is read once (100,000-row models)
    layers = []
    for n, (line, cells) in enumerate(rows, 1):
        key = tuple(cells)
        layer = seen.get(key)
        if layer is None:
            layer = seen[key] = layer_from_csv_row(cells, source, n, line)
        layers.append(layer)
    return layers
