"""Homework 1: CIFAR-10 classification with a 32x32 ResNet, pretraining and few labels.

What the notebook calls is importable from here (``from helpers import hw1``): its
parameters, checked (``hw1.resolve_hw1(**hw1.parameters_of(globals()))``, from
:mod:`helpers.hw1.settings`), and its steps, one call per cell (``hw1.load_data(settings)``,
from :mod:`helpers.hw1.steps`).
"""

from .settings import parameters_of, resolve_hw1
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
    "resolve_hw1",
    "parameters_of",
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
