"""DNN workloads: layer shapes (:class:`Layer`) and models (:class:`Model`, an ordered list of layers).

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
  CONV with K=N, C=K, Y=M, X=R=S=1. A native GEMM layer (type ``GEMM`` with M, N, K) can only
  come from a YAML file or from :meth:`Layer.from_dict`.

YAML model format (also the Hydra config group ``model``; ``model=resnet18`` selects one)::

    name: resnet18          # optional in a file (default: the file name without extension)
    path: null              # or a CSV/YAML file to read instead of ``layers``
    layers:
      - {type: CONV, K: 64, C: 3, Y: 224, X: 224, R: 7, S: 7, stride: 2}
      - {type: DSCONV, K: 1, C: 32, Y: 112, X: 112, R: 3, S: 3}
      - {type: GEMM, M: 512, N: 768, K: 768}

A layer may use the keys type, K, C, Y, X, R, S, M, N, stride (or stride_y and stride_x) and name;
missing sizes default to 1.
"""

from __future__ import annotations

import csv
import io
import operator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence, TypeVar

import yaml

from gamma.errors import GammaError, ModelFileError

LayerType = Literal["CONV", "DSCONV", "GEMM"]
LAYER_TYPES: tuple[str, ...] = ("CONV", "DSCONV", "GEMM")
#: Integer fields of :class:`Layer`, in declaration order.
INT_FIELDS: tuple[str, ...] = ("K", "C", "Y", "X", "R", "S", "M", "N", "stride_y", "stride_x")
#: Largest size of a layer dimension (elements): the cost model computes in int64.
MAX_SIZE = (1 << 31) - 1
#: CSV type column values.
CSV_TYPES: dict[int, str] = {0: "FC", 1: "CONV", 2: "DSCONV", 3: "GEMM"}

T = TypeVar("T")


class LayerError(ValueError):
    """An impossible layer: ``field`` names the offending field, ``reason`` says why."""

    def __init__(self, field_name: str, reason: str) -> None:
        self.field, self.reason = field_name, reason
        super().__init__(f"{field_name}: {reason}")


@dataclass(frozen=True)
class Layer:
    """One layer. Sizes in elements; ``Y``/``X`` are input rows/cols (no padding).

    CONV and DSCONV use K, C, Y, X, R, S (DSCONV has K=1: one filter per input channel) and the
    strides. A native GEMM uses M, N, K only (out[M,N] += A[M,K] * B[K,N]). ``name`` is a label
    and takes no part in equality or hashing, so equal shapes compare equal.
    """

    type: str
    K: int = 1
    C: int = 1
    Y: int = 1
    X: int = 1
    R: int = 1
    S: int = 1
    M: int = 1
    N: int = 1
    stride_y: int = 1
    stride_x: int = 1
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.type not in LAYER_TYPES:
            raise LayerError("type", f"unknown layer type {self.type!r}; expected CONV, DSCONV or GEMM")
        for name in INT_FIELDS:
            value = getattr(self, name)
            try:
                if isinstance(value, bool):
                    raise TypeError
                value = operator.index(value)  # accepts numpy ints, rejects floats and strings
            except TypeError:
                raise LayerError(name, f"must be a positive integer, got {value!r}") from None
            if value < 1:
                raise LayerError(name, f"must be a positive integer, got {value!r}")
            if value > MAX_SIZE:
                raise LayerError(name, f"dimension {name} = {value:,} is too large for the cost "
                                       f"model (at most {MAX_SIZE:,})")
            object.__setattr__(self, name, value)
        if self.type == "GEMM":
            for name in ("C", "Y", "X", "R", "S", "stride_y", "stride_x"):
                if getattr(self, name) != 1:
                    raise LayerError(name, f"GEMM layers use only M, N, K; {name} must be 1, got {getattr(self, name)}")
            return
        for name in ("M", "N"):
            if getattr(self, name) != 1:
                raise LayerError(name, f"{name} is only for GEMM layers; must be 1 for {self.type}, got {getattr(self, name)}")
        if self.R > self.Y:
            raise LayerError("R", f"filter rows R={self.R} exceed input rows Y={self.Y}")
        if self.S > self.X:
            raise LayerError("S", f"filter cols S={self.S} exceed input cols X={self.X}")
        if self.type == "DSCONV" and self.K != 1:
            raise LayerError("K", f"DSCONV (depthwise) layers must have K=1, got K={self.K}")

    @property
    def Yo(self) -> int:
        """Output rows as MAESTRO computes them: Y - R + 1 (no padding, stride not applied)."""
        return self.Y - self.R + 1

    @property
    def Xo(self) -> int:
        """Output cols as MAESTRO computes them: X - S + 1 (no padding, stride not applied)."""
        return self.X - self.S + 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates over the stride-1 output (MAESTRO's "Num MACs" for a dense layer)."""
        if self.type == "GEMM":
            return self.M * self.N * self.K
        per_output = self.C * self.R * self.S * self.Yo * self.Xo
        return per_output if self.type == "DSCONV" else self.K * per_output

    @property
    def dims(self) -> dict[str, int]:
        """MAESTRO ``Dimensions`` sizes (elements): K, C, R, S, Y, X (DSCONV reports K=1), or M, N, K."""
        if self.type == "GEMM":
            return {"M": self.M, "N": self.N, "K": self.K}
        return {"K": self.K, "C": self.C, "R": self.R, "S": self.S, "Y": self.Y, "X": self.X}

    @property
    def shape(self) -> str:
        """Printable key, e.g. ``"CONV K64 C64 Y56 X56 R3 S3"`` (``" s2"`` appended at stride 2)."""
        if self.type == "GEMM":
            return f"GEMM M{self.M} N{self.N} K{self.K}"
        text = f"{self.type} K{self.K} C{self.C} Y{self.Y} X{self.X} R{self.R} S{self.S}"
        if (self.stride_y, self.stride_x) != (1, 1):
            text += f" s{self.stride_y}" if self.stride_y == self.stride_x else f" s{self.stride_y}x{self.stride_x}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The ``layer`` object of ``maestro_public.jsonl`` (plus ``name`` when it is set)."""
        if self.type == "GEMM":
            d: dict[str, Any] = {"type": "GEMM", "M": self.M, "N": self.N, "K": self.K}
        else:
            d = {"type": self.type, **{k: getattr(self, k) for k in ("K", "C", "Y", "X", "R", "S")},
                 "stride_y": self.stride_y, "stride_x": self.stride_x}
        if self.name:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Layer":
        """Inverse of :meth:`to_dict`. Keys are field names; unknown keys raise :class:`LayerError`."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise LayerError(str(key), "unknown layer field")
        if "type" not in data:
            raise LayerError("type", "is required")
        return cls(**data)


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
            values.append(int(text))
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
        if kind == "FC":
            return Layer("CONV", K=K, C=C)
        if kind == "GEMM":  # M, N, K = K, C, Y columns
            return Layer("CONV", K=C, C=Y, Y=K)
        return Layer(kind, K=K, C=C, Y=Y, X=X, R=R, S=S)
    except LayerError as e:
        raise fail(f"column {e.field}: {e.reason}") from None


@dataclass(frozen=True)
class Model:
    """A named, ordered list of layers. ``skipped_ops``: for a model read from an ONNX graph,
    how many nodes of each operator type carried no layer (pooling, activations, ...)."""

    name: str
    layers: tuple[Layer, ...]
    skipped_ops: dict[str, int] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    @property
    def macs(self) -> int:
        """Total MACs over all layers (see :attr:`Layer.macs`)."""
        return sum(layer.macs for layer in self.layers)

    def unique_layers(self) -> tuple[list[Layer], list[int]]:
        """Distinct layer shapes in first-appearance order, and for each layer its index among them."""
        index: dict[Layer, int] = {}
        which = [index.setdefault(layer, len(index)) for layer in self.layers]
        return list(index), which

    def select(self, layers: Any) -> list[int]:
        """The 1-based layer indices named by ``layers`` (``None`` = all), sorted, without
        duplicates; a :class:`GammaError` for anything else."""
        n = len(self)
        if layers is None:
            return list(range(1, n + 1))
        items = [layers] if isinstance(layers, int) else layers
        if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)) or not items:
            raise GammaError(f"layers must be null or a list of 1-based layer indices, got {layers!r}")
        bad = [i for i in items if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= n]
        if bad:
            raise GammaError(f"layers: {bad} not in 1..{n} ({self.name} has {n} layers)")
        return sorted(set(items))

    def expand(self, per_unique: Sequence[T]) -> list[T]:
        """Map one result per unique layer (order of :meth:`unique_layers`) back to every layer."""
        unique, which = self.unique_layers()
        if len(per_unique) != len(unique):
            raise ValueError(f"expected {len(unique)} results (one per unique layer), got {len(per_unique)}")
        return [per_unique[i] for i in which]


_MODEL_KEYS = ("name", "path", "layers")
_YAML_LAYER_KEYS = ("type", "K", "C", "Y", "X", "R", "S", "M", "N", "stride", "stride_y", "stride_x", "name")


def load_model(path: str | Path, apply_strides: bool = False) -> Model:
    """Read a model from our YAML format (``.yaml``/``.yml``), an ONNX graph (``.onnx``, see
    :mod:`gamma.onnx_model`) or a GAMMA CSV table (anything else).

    Raises :class:`ModelFileError` naming the file, the row or layer, and the reason.
    ``apply_strides`` keeps the YAML ``stride`` values (CSV tables have none: stride 1).
    """
    p = Path(path).expanduser()
    if p.suffix.lower() == ".onnx":
        from gamma.onnx_model import load_onnx

        return load_onnx(p, apply_strides, source=str(path))
    text = read_text_file(p, str(path))
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "file"
            raise ModelFileError(str(path), where, f"invalid YAML: {getattr(e, 'problem', None) or e}") from None
        if not isinstance(data, Mapping):
            raise ModelFileError(str(path), "file", "expected a mapping with keys name, path, layers")
        return _model_from_mapping(data, str(path), apply_strides, default_name=p.stem, base_dir=p.parent)
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
                        default_name: str | None, base_dir: Path | None) -> Model:
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
        model = load_model(file, apply_strides)
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
        return Layer(**args)
    except LayerError as e:
        raise ModelFileError(source, f"layer {n} field '{e.field}'", e.reason) from None


def _read_csv(text: str, source: str) -> list[Layer]:
    """Layers of a GAMMA CSV table (header row optional, blank lines skipped)."""
    rows = [(line, cells) for line, cells in enumerate(csv.reader(io.StringIO(text, newline="")), 1)
            if any(c.strip() for c in cells)]
    if rows and any(ch.isalpha() for ch in rows[0][1][0]):
        rows = rows[1:]  # header such as K,C,Y,X,R,S,T / M,N,K,0,0,0,T / O,I,0,0,0,0,T
    if not rows:
        raise ModelFileError(source, "file", "empty model: no layer rows")
    return [layer_from_csv_row(cells, source, n, line) for n, (line, cells) in enumerate(rows, 1)]
