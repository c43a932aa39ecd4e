"""Homework 2: anomaly detection with a convolutional autoencoder and label-free thresholds.

``from helpers import hw2`` gives what the notebook calls: its parameters, checked
(``hw2.resolve_hw2(**hw2.parameters_of(globals()))``, :mod:`~helpers.hw2.settings`), its
steps, one call per cell (:mod:`~helpers.hw2.steps`), what it shows and saves of the result
(:mod:`~helpers.hw2.results`) and its figures (``hw2.plots``).
"""

from .autoencoder import attention_masks, stage_shapes
from .results import (
    ablation_table,
    anomaly_maps,
    combined_signals,
    describe,
    extremes,
    mistakes,
    save_metrics,
)
from .settings import parameters_of, resolve_hw2
from .steps import (
    build_models,
    load_data,
    score_and_threshold,
    split,
    train,
    train_defect_net,
    train_transformation_net,
)

__all__ = [
    "ablation_table",
    "anomaly_maps",
    "attention_masks",
    "build_models",
    "combined_signals",
    "describe",
    "extremes",
    "load_data",
    "mistakes",
    "parameters_of",
    "resolve_hw2",
    "save_metrics",
    "score_and_threshold",
    "split",
    "stage_shapes",
    "train",
    "train_defect_net",
    "train_transformation_net",
]
