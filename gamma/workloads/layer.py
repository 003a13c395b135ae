"""DNN layer shapes (:class:`Layer`) and models (:class:`Model`, an ordered list of layers).

Units: every size is a count of elements (channels, rows, columns); MACs are multiply-accumulates.

Conventions, as in GAMMA and MAESTRO:

* ``Y`` and ``X`` are the **input** rows/cols, without padding. The output size is
  ``Yo = Y - R + 1`` and ``Xo = X - S + 1`` whatever the stride (MAESTRO's dimension table).
* **Strides.** A layer has stride 1 unless built with ``stride_y``/``stride_x``; the model files
  (:mod:`gamma.workloads.files`) keep a YAML ``stride`` only when asked to.
* A native GEMM layer (type ``GEMM`` with M, N, K) computes out[M,N] += A[M,K] * B[K,N].
* A **GEMM-view** CONV layer (``gemm=True``) is a GEMM or FC layer evaluated as the 1x1 CONV
  GAMMA's tables turn it into: K = N, C = K, Y = M, X = R = S = 1 (same MACs). The cost model and
  the map space see the CONV; :attr:`Layer.view` and :attr:`Layer.gemm_dims` give the GEMM back
  for people (console table, results.json).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, fields
from typing import Any, Iterator, Literal, Mapping, Sequence, TypeVar

from gamma.errors import GammaError
from gamma.limits import MAX_SIZE, product_limit_reason

LayerType = Literal["CONV", "DSCONV", "GEMM"]
LAYER_TYPES: tuple[str, ...] = ("CONV", "DSCONV", "GEMM")
#: Integer fields of :class:`Layer`, in declaration order.
INT_FIELDS: tuple[str, ...] = ("K", "C", "Y", "X", "R", "S", "M", "N", "stride_y", "stride_x")

T = TypeVar("T")


def gemm_text(dims: Mapping[str, int]) -> str:
    """A GEMM's printable shape, e.g. ``"GEMM M512 N768 K768"`` (``dims``: M, N, K elements)."""
    return f"GEMM M{dims['M']} N{dims['N']} K{dims['K']}"


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
    and takes no part in equality or hashing, so equal shapes compare equal. ``gemm`` marks a CONV
    layer as the evaluation of GEMM M = Y, N = K, K = C (see the module doc); like ``name`` it is
    a label: the cost model sees the same layer with or without it.
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
    gemm: bool = field(default=False, compare=False)

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
                                       f"model (at most {MAX_SIZE:,}): the kernel computes "
                                       "in int64")
            object.__setattr__(self, name, value)
        self._check_product()
        self._check_gemm_view()
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

    def _check_gemm_view(self) -> None:
        """A ``gemm`` layer is a CONV with X = R = S = 1 at stride 1 (a GEMM's 1x1 CONV form)."""
        if not isinstance(self.gemm, bool):
            raise LayerError("gemm", f"must be true or false, got {self.gemm!r}")
        if not self.gemm:
            return
        if self.type != "CONV":
            raise LayerError("gemm", f"only a CONV layer can be a GEMM's 1x1 CONV form, not {self.type}")
        for name in ("X", "R", "S", "stride_y", "stride_x"):
            if getattr(self, name) != 1:
                raise LayerError(name, f"a GEMM's CONV form (K=N, C=K, Y=M) has {name} = 1, "
                                       f"got {getattr(self, name)}")

    def _check_product(self) -> None:
        """The product of the dimensions (:attr:`work`) within what the cost model can count
        (:data:`gamma.limits.MAX_PRODUCT`); the error names the largest dimension."""
        names = {"GEMM": "MNK", "DSCONV": "CRSYX"}.get(self.type, "KCRSYX")
        reason = product_limit_reason(self.work, "*".join(names))
        if reason is not None:
            raise LayerError(max(names, key=lambda n: getattr(self, n)), reason)

    @property
    def work(self) -> int:
        """The product of the dimensions the cost model multiplies (elements): K*C*R*S*Y*X with
        input-centric Y and X (DSCONV without K; GEMM M*N*K), at least :attr:`macs`."""
        if self.type == "GEMM":
            return self.M * self.N * self.K
        return (1 if self.type == "DSCONV" else self.K) * self.C * self.R * self.S * self.Y * self.X

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
    def gemm_dims(self) -> dict[str, int] | None:
        """The GEMM (elements) a GEMM-view CONV layer evaluates: M = Y, N = K, K = C; None for
        other layers (a native GEMM has them in :attr:`dims`)."""
        return {"M": self.Y, "N": self.K, "K": self.C} if self.gemm else None

    @property
    def view(self) -> str:
        """The layer as people know it: ``"GEMM M512 N768 K768"`` for a GEMM-view layer,
        else :attr:`shape` (which stays the key of the evaluated CONV)."""
        g = self.gemm_dims
        return self.shape if g is None else gemm_text(g)

    @property
    def shape(self) -> str:
        """Printable key, e.g. ``"CONV K64 C64 Y56 X56 R3 S3"`` (``" s2"`` appended at stride 2)."""
        if self.type == "GEMM":
            return gemm_text(self.dims)
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
        if self.gemm:
            d["gemm"] = True
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


@dataclass(frozen=True)
class Model:
    """A named, ordered list of layers. ``skipped_ops``: for a model read from an ONNX graph,
    per operator type that carried no layer (pooling, activations, Softmax, ...), ``nodes`` (how
    many) and ``elements`` (the sum of their outputs' sizes, elements; None when unknown)."""

    name: str
    layers: tuple[Layer, ...]
    skipped_ops: dict[str, dict[str, int | None]] = field(default_factory=dict, compare=False)

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

    def skipped_text(self) -> str:
        """``skipped_ops`` in one line, e.g. ``Relu 2 (24,576 elements), Softmax 1 (? elements)``."""
        def elements(n: int | None) -> str:
            return "?" if n is None else f"{n:,}"
        return ", ".join(f"{op} {s['nodes']} ({elements(s['elements'])} elements)"
                         for op, s in self.skipped_ops.items())

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
