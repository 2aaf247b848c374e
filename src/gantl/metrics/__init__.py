"""gantl.metrics: FID, KID, precision/recall, density/coverage, IS, independent Wasserstein critic,
classifier score and memorization.

Entry points: :func:`gantl.metrics.api.evaluate` (paths, checkpoints, generators, callables) and
:func:`gantl.metrics.api.evaluate_generator` (what the training loop calls at snapshots); metric and
feature-extractor registries in :mod:`gantl.metrics.registry` and :mod:`gantl.metrics.features`.
"""
