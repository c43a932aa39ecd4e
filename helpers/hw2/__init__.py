"""Homework 2: anomaly detection with a convolutional autoencoder and label-free thresholds.

The notebook's steps, one call per cell, are importable from here (``from helpers import
hw2``; ``hw2.load_data(settings)``); they live in :mod:`helpers.hw2.steps`.
"""

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
