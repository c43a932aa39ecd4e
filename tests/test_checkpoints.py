"""Loading weights: a checkpoint that does not fit the model is named, with its differences."""

import pytest
import torch
from torch import nn

from helpers.core.checkpoints import describe, load_checked
from helpers.core.errors import CheckpointError
from helpers.hw1.resnet import build_classifier


def test_a_fitting_state_is_loaded_whole():
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    load_checked(target, source.state_dict(), "a.pt")
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)


@pytest.mark.parametrize(
    "change, found",
    [
        (lambda s: s.pop("bias"), r"1 missing, e.g. bias"),
        (lambda s: s.update(extra=torch.zeros(1)), r"1 unexpected, e.g. extra"),
        (
            lambda s: s.update(weight=torch.zeros(4, 3)),
            r"1 tensor\(s\) of another shape, e.g. weight \(4, 3\) vs \(2, 3\)",
        ),
    ],
)
def test_a_state_that_does_not_fit_is_named_and_nothing_is_loaded(change, found):
    target = nn.Linear(3, 2)
    before = target.weight.detach().clone()
    state = nn.Linear(3, 2).state_dict()
    change(state)
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint a.pt \(trained as small\) does not fit this model "
        rf"\(Linear\): {found}.*Use the arch and width it was trained",
    ):
        load_checked(target, state, "a.pt", "small")
    assert torch.equal(target.weight, before)  # never a partial load


def test_our_resnets_are_described_by_arch_and_width():
    assert describe(build_classifier("resnet18", 8)) == "resnet18, width 8"
    assert describe(nn.Linear(1, 1)) == "Linear"
