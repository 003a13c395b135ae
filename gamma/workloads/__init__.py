"""Workloads: layer shapes and models (:mod:`.layer`), model files (:mod:`.files`: CSV, YAML,
Hydra configs), ONNX graphs (:mod:`.onnx`) and MAESTRO input files (:mod:`.maestro_io`)."""
