"""MLflow, and only here: the store (:mod:`.store`), writing runs and sweeps (:mod:`.writer`),
reading them back (:mod:`.reader`) and Hydra's sweep callbacks (:mod:`.callbacks`)."""
