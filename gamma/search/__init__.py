"""Running a search: the rules decided once per job (:mod:`.rules`), building a job's model,
hardware, objectives and optimizers (:mod:`.setup`), parallel layers (:mod:`.parallel`), the
library API (:mod:`.api`), the two-stage procedure (:mod:`.twostage`), the job shell with
results.json, console and MLflow (:mod:`.job`, :mod:`.signals`), labels (:mod:`.labels`) and the
cache of proven optima (:mod:`.optima`)."""
