"""Homework 2: anomaly detection with a convolutional autoencoder and label-free thresholds.

What the notebook calls is importable from here (``from helpers import hw2``): its
parameters, checked (``hw2.resolve_hw2(**hw2.parameters_of(globals()))``, from
:mod:`helpers.hw2.settings`), and its steps, one call per cell (``hw2.load_data(settings)``,
from :mod:`helpers.hw2.steps`).
"""

from .settings import parameters_of, resolve_hw2
from .steps import (
    ablation_table,
    anomaly_maps,
    build_models,
    combined_signals,
    describe,
    extremes,
    load_data,
    mistakes,
    save_metrics,
    score_and_threshold,
    split,
    train,
    train_transformation_net,
)

__all__ = [
    "resolve_hw2",
    "parameters_of",
    "ablation_table",
    "anomaly_maps",
    "build_models",
    "combined_signals",
    "describe",
    "extremes",
    "load_data",
    "mistakes",
    "save_metrics",
    "score_and_threshold",
    "split",
    "train",
    "train_transformation_net",
]
