"""Experiments: the run index (every run of a graph, what changed between runs), and
hyper-parameter and structure sweeps with Optuna (:mod:`runtime.experiments.sweep`)."""
