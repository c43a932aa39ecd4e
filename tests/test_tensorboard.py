import matplotlib.pyplot as plt
import pytest
from tensorboard.backend.event_processing import event_accumulator
from torch import nn

from helpers.core.tensorboard import NoLog, open_log


def test_epoch_scalars_histograms_and_figures_reach_the_event_file(tmp_path):
    log = open_log(tmp_path, "run-1")
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    history = []
    for epoch, loss in ((1, 2.0), (2, 1.5)):
        history.append(
            {
                "epoch": epoch,
                "lr": 0.1,
                "train_loss": loss,
                "val_accuracy": 0.3 * epoch,
                "grad_norm": {"0.weight": 0.5},
            }
        )
        log.epoch(history, model)
    fig = plt.figure()
    log.figure("curves", fig)
    plt.close(fig)
    log.close()

    events = event_accumulator.EventAccumulator(
        str(tmp_path / "run-1"), size_guidance={"histograms": 0}
    )
    events.Reload()
    tags = events.Tags()
    assert {"loss/train", "accuracy/val", "lr", "grad_norm/0.weight"} <= set(tags["scalars"])
    assert [(e.step, e.value) for e in events.Scalars("loss/train")] == [(1, 2.0), (2, 1.5)]
    assert {"weights/0.weight", "weights/2.weight"} <= set(tags["histograms"])
    assert "curves" in tags["images"]


def test_no_log_dir_logs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a SummaryWriter without a folder would write ./runs/ here
    log = open_log(None, "run")
    assert isinstance(log, NoLog) and log.path is None
    log.epoch([{"epoch": 1, "train_loss": 1.0}], nn.Linear(2, 2))
    fig = plt.figure()
    log.figure("x", fig)
    plt.close(fig)
    log.close()
    assert list(tmp_path.iterdir()) == []


def test_a_log_dir_without_the_tensorboard_package_names_the_fix(tmp_path, monkeypatch):
    import sys

    from helpers.core.errors import ParameterError

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if it were not installed
    with pytest.raises(
        ParameterError, match="log_dir=.* needs the tensorboard package: pip install"
    ):
        open_log(tmp_path, "run")
    assert list(tmp_path.iterdir()) == []
