"""How a batch of mappings is scored: the one metric registry (:mod:`.metrics`), the scalar
objective every optimizer searches through (:mod:`.scalar`), the Pareto objective
(:mod:`.pareto`) and non-dominated sorting, crowding and hypervolume (:mod:`.nondominated`)."""
