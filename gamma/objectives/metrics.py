"""The one metric registry: every metric a search can minimize, its unit, the cost-model output
it is read from and how a network's value follows from its layers'. Every other module (the
objectives, two-stage, the Pareto reports, results.json, compare.py) reads metrics from here.

A metric is a product of per-layer *quantities* (latency, energy, power, area; EDP = energy x
latency). A network's quantity combines its layers' values: latency (cycles) and energy (nJ)
add up; power (mW) and area (um^2) take the largest layer's (one accelerator must hold every
layer's buffers, and a pipeline's sub-accelerators draw their power together only in
``objective=two_stage``, which sums power itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from gamma.costmodel.base import Evaluation


@dataclass(frozen=True)
class Quantity:
    """A per-layer cost-model output a metric is built from."""

    name: str
    output: str  # its key in a cost model's outputs of one mapping
    combine: Callable[..., Any]  # how a network combines its layers' values (np.add / np.maximum)
    batch: Callable[["Evaluation"], np.ndarray]  # its values over an evaluated batch


def _area_power(key: str) -> Callable[["Evaluation"], np.ndarray]:
    return lambda res: res.area_power()[key]


QUANTITIES: dict[str, Quantity] = {
    "latency": Quantity("latency", "runtime_cycles", np.add, lambda res: res.runtime),
    "energy": Quantity("energy", "energy_nJ", np.add, lambda res: res.energy),
    "power": Quantity("power", "power", np.maximum, _area_power("power")),
    "area": Quantity("area", "area", np.maximum, _area_power("area")),
}


@dataclass(frozen=True)
class Metric:
    """A minimized metric: the product of its ``state`` quantities (one for all but EDP)."""

    name: str
    unit: str
    state: tuple[str, ...]
    network: str  # how a network's value follows from its layers', in words

    def batch(self, res: "Evaluation") -> np.ndarray:
        """Its value for every mapping of an evaluated batch."""
        values = [QUANTITIES[q].batch(res) for q in self.state]
        # EDP as energy x runtime, the order the values were always multiplied in
        return values[0] if len(values) == 1 else values[1] * values[0]

    def of_outputs(self, outputs: Mapping[str, Any]) -> float:
        """Its value for one mapping from the cost model's outputs of that mapping."""
        return self.of_quantities({q: float(outputs[QUANTITIES[q].output]) for q in self.state})

    def of_quantities(self, values: Mapping[str, float]) -> float:
        """Its value from its quantities' values (a layer's or a network's)."""
        out = 1.0
        for q in self.state:
            out = out * values[q] if len(self.state) > 1 else values[q]
        return out


METRICS: dict[str, Metric] = {
    "latency": Metric("latency", "cycles", ("latency",), "sum of runtime_cycles"),
    "energy": Metric("energy", "nJ", ("energy",), "sum of energy_nJ"),
    "power": Metric("power", "mW", ("power",), "max of power"),
    "edp": Metric("edp", "nJ*cycles", ("latency", "energy"),
                  "sum of energy_nJ x sum of runtime_cycles"),
    "area": Metric("area", "um^2", ("area",), "max of area"),
}
#: Metric name -> unit.
UNITS: dict[str, str] = {m.name: m.unit for m in METRICS.values()}


def metric(name: str) -> Metric:
    """The metric ``name``; a ``KeyError`` naming the choices for an unknown one (the callers
    that read a config turn it into a :class:`~gamma.errors.GammaError`)."""
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    return METRICS[name]


def output_key(name: str) -> str:
    """The cost-model output a single-quantity metric is read from (``runtime_cycles`` for
    latency)."""
    (q,) = METRICS[name].state
    return QUANTITIES[q].output


def network_values(outputs: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[float]:
    """Each metric's network value from one chosen mapping per layer (cost-model outputs)."""
    state = {q: float(Q.combine.reduce([float(o[Q.output]) for o in outputs]))
             for q, Q in QUANTITIES.items()}
    return [METRICS[m].of_quantities(state) for m in metrics]
