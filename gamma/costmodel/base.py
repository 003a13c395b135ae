"""The cost-model seam: what a search needs from any analytical cost model.

A cost model evaluates a batch of mappings of one layer on one hardware in one call. The
hardware is an argument of every call, so it may differ from one batch to the next (a search
over hardware and mappings together); nothing in a cost model is fixed per job. A search reaches
a cost model only through :class:`gamma.objectives.scalar.Objective`, which picks it by name
(``costmodel=<name>`` in the config, :func:`costmodel_of`).

A cost model says, besides its numbers:

- ``outputs``: the name and unit of every per-mapping output (:meth:`Evaluation.outputs`);
- ``undercounts``: the ways it can report less than the hardware needs (name -> description),
  which the objective's guard must catch;
- ``lower_bounds``: the physical lower bounds its runtime never goes below for a mapping it
  counts right (the guard rejects a mapping under one of them), and which the exhaustive
  search's proofs rely on.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol, Sequence

import numpy as np

from gamma.errors import GammaError
from gamma.hardware import Hardware
from gamma.mapping import Mapping, MappingBatch
from gamma.workloads.layer import Layer

#: Lower bounds a cost model may declare (``CostModel.lower_bounds``).
COMPUTE_BOUND = "compute_bound"  # runtime >= ceil(true MACs / PEs) cycles
MAC_COUNT = "mac_count"  # the MACs it counts equal the layer's K*C*R*S*Y'*X'
BUSIEST_PE = "busiest_pe"  # runtime >= the MACs of the mapping's busiest PE / SIMD lanes


class Evaluation(Protocol):
    """A cost model's answer for a batch of ``B`` mappings: arrays over the batch (cycles, nJ,
    MACs, elements), per-mapping verdicts and the full output row of one mapping."""

    hw: Hardware

    def __len__(self) -> int: ...

    @property
    def runtime(self) -> np.ndarray: ...  # cycles

    @property
    def energy(self) -> np.ndarray: ...  # nJ

    @property
    def macs(self) -> np.ndarray: ...  # MACs as the model counts them

    @property
    def l1_size_req(self) -> np.ndarray: ...  # elements per innermost PE

    @property
    def l2_size_req(self) -> np.ndarray: ...  # elements

    @property
    def rejected(self) -> np.ndarray: ...  # bool: the model cannot evaluate the mapping

    @property
    def valid(self) -> np.ndarray: ...  # bool: evaluated, runtime >= 1, L1/L2 within capacity

    def area_power(self) -> dict[str, np.ndarray]: ...  # "area" (um^2), "power" (mW)

    def verdict(self, b: int) -> tuple[str, str]: ...  # ("valid"|"invalid"|"rejected", reason)

    def outputs(self, b: int) -> dict[str, float]: ...  # every output of mapping b


class CostModel(ABC):
    """An analytical cost model (see the module docstring)."""

    #: The config name (``costmodel=<name>``).
    name: ClassVar[str]
    #: Output name -> unit of :meth:`Evaluation.outputs`' main entries.
    outputs: ClassVar[dict[str, str]]
    #: Known undercounts: name -> what it is (the guard catches each).
    undercounts: ClassVar[dict[str, str]]
    #: Lower bounds that hold for every mapping the model counts right (:data:`COMPUTE_BOUND`,
    #: :data:`MAC_COUNT`, ...).
    lower_bounds: ClassVar[tuple[str, ...]]

    @abstractmethod
    def encode(self, layer: Layer, mappings: MappingBatch | Sequence[Mapping]) -> Any:
        """The batch in the model's own input form (reusable for several hardware)."""

    @abstractmethod
    def evaluate(self, layer: Layer, hw: Hardware, encoded: Any) -> Evaluation:
        """Evaluate an encoded batch of ``layer``'s mappings on ``hw`` in one call."""

    def evaluate_batch(self, layer: Layer, hw: Hardware,
                       mappings: MappingBatch | Sequence[Mapping]) -> Evaluation:
        """:meth:`encode` then :meth:`evaluate`."""
        return self.evaluate(layer, hw, self.encode(layer, mappings))


#: Registered cost models: config name -> "module:class" (imported when first used).
COSTMODELS: dict[str, str] = {"maestro": "gamma.costmodel.maestro:MaestroCostModel"}
_BUILT: dict[str, CostModel] = {}


def costmodel_of(name: str) -> CostModel:
    """The cost model registered as ``name`` (one instance per process); a :class:`GammaError`
    naming ``costmodel`` for an unknown name."""
    if name not in _BUILT:
        target = COSTMODELS.get(name)
        if target is None:
            raise GammaError(f"costmodel: unknown cost model {name!r}; available: "
                             f"{', '.join(sorted(COSTMODELS))}")
        module, attr = target.split(":", 1)
        _BUILT[name] = getattr(importlib.import_module(module), attr)()
    return _BUILT[name]
