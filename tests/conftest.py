import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers.synthetic import write_cifar10  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory):
    """A small CIFAR-10 copy in the standard format: 2 x 60 training, 40 test images."""
    return write_cifar10(tmp_path_factory.mktemp("cifar"), per_batch=60, batches=2, test=40)


@pytest.fixture(scope="session")
def anomaly_dir(tmp_path_factory):
    """The course layout with generated crops: 120 normal, 8 known anomalies, 48 test."""
    from helpers.synthetic import write_anomaly_folder

    return write_anomaly_folder(tmp_path_factory.mktemp("anomaly"))
