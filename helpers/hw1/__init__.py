"""Homework 1: CIFAR-10 classification with a 32x32 ResNet, pretraining and few labels.

``from helpers import hw1`` gives what the notebook calls: its parameters, checked
(``hw1.resolve_hw1(**hw1.parameters_of(globals()))``, :mod:`~helpers.hw1.settings`), and
its steps, one call per cell (:mod:`~helpers.hw1.steps`, :mod:`~helpers.hw1.pretraining`,
:mod:`~helpers.hw1.self_training`) and figures (``hw1.plots``).
"""

from .pretraining import apply_pretraining, feature_quality, restoration_examples
from .resnet import stage_shapes
from .self_training import self_train
from .settings import parameters_of, resolve_hw1
from .steps import (
    build_model,
    gradient_snapshot,
    load_data,
    save_metrics,
    test_report,
    train,
)

__all__ = [
    "apply_pretraining",
    "build_model",
    "feature_quality",
    "gradient_snapshot",
    "load_data",
    "parameters_of",
    "resolve_hw1",
    "restoration_examples",
    "save_metrics",
    "self_train",
    "stage_shapes",
    "test_report",
    "train",
]
