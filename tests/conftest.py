"""Shared fixtures (generated data sets) and builders of small runs' settings, for every test
file."""

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers.data.synthetic import write_cifar10  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))

ROOT = Path(__file__).resolve().parents[1]  # the repository
CPU = torch.device("cpu")
# The fewest hw1 parameters a preset needs beside it; nothing is read from or written to these
# paths.
HW1_BASE = dict(
    data_dir="d",
    download=False,
    fraction=1.0,
    seed=0,
    device="cpu",
    figures_dir="f",
    results_dir="r",
)


def hw1_settings(data_dir, tmp_path, preset: str = "cpu", **change):
    """Checked settings of a small hw1 run on ``data_dir`` (ResNet-18 of width 8, 2 epochs of
    batches of 30) that writes under ``tmp_path``; keyword arguments change any parameter."""
    from helpers.hw1.settings import resolve_hw1

    params = dict(
        HW1_BASE,
        data_dir=str(data_dir),
        epochs=2,
        arch="resnet18",
        width=8,
        batch_size=30,
        figures_dir=str(tmp_path / "f"),
        results_dir=str(tmp_path / "results"),
        pretrain_dir=str(tmp_path / "pre"),
    )
    return resolve_hw1(preset, **{**params, **change})


def hw2_parameters(data_dir, tmp_path, **change) -> dict:
    """Every parameter of a small, fast hw2 run on the course layout at ``data_dir`` (one
    autoencoder of 15 epochs), writing under ``tmp_path``; keyword arguments change any."""
    params = dict(
        dataset="folder",
        data_dir=str(data_dir),
        download=False,
        normal_class=0,
        train_dir=None,
        anomalies_dir=None,
        test_dir=None,
        annotation_file=None,
        image_size=None,
        channels=[8, 16, 32],
        latent=8,
        epochs=15,
        batch_size=32,
        lr=0.005,
        patience=15,
        seed=0,
        device="cpu",
        score="combined",
        threshold_method="auto",
        target_tnr=0.95,
        val_fraction=0.3,
        autoencoders=1,
        defect_epochs=2,
        figures_dir=str(tmp_path / "f"),
        results_dir=str(tmp_path / "results"),
    )
    return {**params, **change}


def hw2_settings(data_dir, tmp_path, **change):
    """:func:`hw2_parameters`, checked by ``resolve_hw2``."""
    from helpers.hw2.settings import resolve_hw2

    return resolve_hw2(**hw2_parameters(data_dir, tmp_path, **change))


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures each test drew, so matplotlib does not keep every one open."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory):
    """A small CIFAR-10 copy in the standard format: 2 x 60 training, 40 test images."""
    return write_cifar10(tmp_path_factory.mktemp("cifar"), per_batch=60, batches=2, test=40)


@pytest.fixture(scope="session")
def anomaly_dir(tmp_path_factory):
    """The course layout with generated crops: 120 normal, 8 known anomalies, 48 test."""
    from helpers.data.synthetic import write_anomaly_folder

    return write_anomaly_folder(tmp_path_factory.mktemp("anomaly"))
