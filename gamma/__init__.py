"""gamma: mapping search for spatial DNN accelerators (GAMMA, Kao & Krishna, ICCAD 2020).

Data flow: a :class:`~gamma.workloads.layer.Layer` and a :class:`~gamma.hardware.Hardware` go into the
cost model (:mod:`gamma.costmodel`), which evaluates a batch of :class:`~gamma.mapping.Mapping`
objects in one call.
"""

__version__ = "0.1.0"
