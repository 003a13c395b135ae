"""Analyses over finished runs, as importable modules behind the thin command lines in
``scripts/``: comparing a sweep (:mod:`.compare`), reproducing the paper (:mod:`.paper`),
sample efficiency (:mod:`.sample_efficiency`), Pareto fronts (:mod:`.pareto`) and proven optima
(:mod:`.optima`)."""
