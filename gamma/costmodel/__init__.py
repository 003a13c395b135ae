"""Cost models behind one seam (:mod:`.base`: :class:`~.base.CostModel`, chosen by
``costmodel=<name>``) and the one implemented here, our MAESTRO-exact analytical model, batched
(:mod:`.maestro`; its kernel :mod:`.kernel`, packing :mod:`.encode`, outputs :mod:`.evaluate`)."""

from gamma.costmodel.encode import PackedMappings, pack
from gamma.costmodel.evaluate import OK_INVALID, OK_VALID, REJECTED, CostResult, evaluate

__all__ = ["evaluate", "CostResult", "PackedMappings", "pack", "OK_VALID", "OK_INVALID", "REJECTED"]
