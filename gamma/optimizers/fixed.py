"""A fixed dataflow as an optimizer: the dataflow's mapping of each layer, shrunk until it fits.

``optimizer=fixed dataflow=<name>`` evaluates the dataflow of ``conf/dataflow/<name>.yaml`` (or a
user's MAESTRO file, ``dataflow=file dataflow.path=...``) on every layer through the common
objective: one counted evaluation, plus one per shrink step while the mapping overflows L1 or L2
(:func:`gamma.mapspace.dataflows.shrink_for`). It draws no random numbers. A template that fits nothing
leaves the layer infeasible, as any optimizer would; a user's file that cannot be made to fit a
layer ends the job with an error naming the file.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gamma.mapspace.dataflows import Dataflow, fit_clusters, shrink_for
from gamma.errors import GammaError
from gamma.objectives.scalar import Objective
from gamma.optimizers.base import Optimizer, ProgressCallback


class FixedDataflow(Optimizer):
    """Evaluates one fixed dataflow per layer (``dataflow``: the ``dataflow`` config group)."""

    name = "fixed"

    def __init__(self, dataflow: dict[str, Any] | None = None) -> None:
        self.dataflow = Dataflow.from_config(dataflow)
        self.from_file = bool(dataflow and dataflow.get("path") is not None)

    def optimize(self, objective: Objective, rng: np.random.Generator,
                 on_progress: ProgressCallback | None = None) -> None:
        layer, hw = objective.layer, objective.hw
        mapping = fit_clusters(self.dataflow.mapping(layer, hw), hw.num_pes)
        reason, tried = None, 0
        while objective.remaining > 0:
            try:
                reason = objective.evaluate_mappings([mapping])[1][0]
            except GammaError as e:  # the cost model's format cannot hold the mapping
                raise GammaError(f"{self.dataflow.source}: {e}") from None
            tried += 1
            if on_progress:
                on_progress(objective.used, objective.best_cost)
            if reason is None:
                return
            mapping = shrink_for(layer, mapping, reason)
            if mapping is None:
                break
        if self.from_file:
            why = reason if reason is not None else "no evaluation left in the budget"
            raise GammaError(f"{self.dataflow.source}: does not fit layer {layer.shape} on "
                             f"{hw.num_pes} PEs (L1 {hw.l1_size}, L2 {hw.l2_size} elements) after "
                             f"{tried} evaluation(s), shrinking included: {why}")
