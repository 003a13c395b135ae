"""Our MAESTRO-exact analytical cost model, batched: see :func:`evaluate`."""

from gamma.costmodel.encode import PackedMappings, pack
from gamma.costmodel.evaluate import OK_INVALID, OK_VALID, REJECTED, CostResult, evaluate

__all__ = ["evaluate", "CostResult", "PackedMappings", "pack", "OK_VALID", "OK_INVALID", "REJECTED"]
