"""Homework 1: CIFAR-10 classification with a 32x32 ResNet, pretraining and few labels.

The notebook's steps, one call per cell, are importable from here (``from helpers import
hw1``; ``hw1.load_data(settings)``); they live in :mod:`helpers.hw1.steps`.
"""

from .steps import (
    apply_pretraining,
    build_model,
    feature_quality,
    gradient_snapshot,
    load_data,
    restoration_examples,
    save_metrics,
    self_train,
    test_report,
    train,
)

__all__ = [
    "apply_pretraining",
    "build_model",
    "feature_quality",
    "gradient_snapshot",
    "load_data",
    "restoration_examples",
    "save_metrics",
    "self_train",
    "test_report",
    "train",
]
