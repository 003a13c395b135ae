"""The MAESTRO cost model behind the seam of :mod:`gamma.costmodel.base` (``costmodel=maestro``):
our batched, MAESTRO-exact re-implementation (:mod:`.kernel`, :mod:`.encode`, :mod:`.evaluate`).
See ``docs/cost-model.md`` for what it computes and ``docs/undercounts.md`` for its undercounts."""

from __future__ import annotations

from typing import ClassVar, Sequence

from gamma.costmodel.base import BUSIEST_PE, COMPUTE_BOUND, MAC_COUNT, CostModel
from gamma.costmodel.encode import PackedMappings, pack, pack_batch
from gamma.costmodel.evaluate import CostResult, evaluate
from gamma.hardware import Hardware
from gamma.mapping import Mapping, MappingBatch
from gamma.workloads.layer import Layer


class MaestroCostModel(CostModel):
    """MAESTRO's runtime, energy, buffer requirements, area and power, exact to the C++ tool."""

    name: ClassVar[str] = "maestro"
    outputs: ClassVar[dict[str, str]] = {
        "runtime_cycles": "cycles", "energy_nJ": "nJ", "num_macs": "MACs",
        "l1_size_req": "elements", "l2_size_req": "elements", "area": "um^2", "power": "mW",
        "throughput_macs_per_cycle": "MACs/cycle", "offchip_bw_req": "elements/cycle",
    }
    undercounts: ClassVar[dict[str, str]] = {
        "below_compute_bound": "edge tiles that do not divide their parent, or sliding windows, "
                               "can make the runtime less than the MACs over the PEs",
        "mac_count": "the same edge arithmetic can count fewer (or more) MACs than the layer has",
        "busiest_pe": "with inner tiles that do not divide their parent, the runtime can fall below "
                      "the work of the mapping's own busiest PE (idle PEs the compute bound "
                      "does not see)",
    }
    lower_bounds: ClassVar[tuple[str, ...]] = (COMPUTE_BOUND, MAC_COUNT, BUSIEST_PE)

    def encode(self, layer: Layer, mappings: MappingBatch | Sequence[Mapping]) -> PackedMappings:
        """The kernel's packed arrays (a :class:`PackError` for a shape they cannot hold)."""
        return pack_batch(mappings) if isinstance(mappings, MappingBatch) else pack(mappings)

    def evaluate(self, layer: Layer, hw: Hardware, encoded: PackedMappings) -> CostResult:
        return evaluate(layer, hw, encoded)
