import pickle

import numpy as np
import pytest

from helpers.core.errors import DataError, ParameterError
from helpers.data.cifar import CIFAR10_FOLDER, load_cifar10, split_train_val, stratified_indices
from helpers.data.synthetic import write_cifar10


def test_loads_a_smaller_copy_as_uint8_tensors(cifar_dir):
    train, test = load_cifar10(cifar_dir)
    assert train.images.shape == (120, 3, 32, 32) and train.images.dtype.is_floating_point is False
    assert test.images.shape == (40, 3, 32, 32)
    assert len(train.labels) == 120 and set(train.labels.tolist()) == set(range(10))
    assert train.classes[0] == "airplane" and len(train.classes) == 10


def test_keeps_pixel_layout_of_the_python_batches(cifar_dir):
    with open(cifar_dir / CIFAR10_FOLDER / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="latin1")
    train, _ = load_cifar10(cifar_dir)
    first = np.asarray(raw["data"][0])
    assert np.array_equal(train.images[0, 0].numpy().ravel(), first[:1024])  # red plane first
    assert np.array_equal(train.images[0, 2].numpy().ravel(), first[2048:])
    assert int(train.labels[0]) == raw["labels"][0]


def test_accepts_the_batches_folder_itself(cifar_dir):
    train, _ = load_cifar10(cifar_dir / CIFAR10_FOLDER)
    assert len(train) == 120


def test_missing_data_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(DataError, match="download=True") as info:
        load_cifar10(tmp_path / "nowhere")
    assert "cifar-10-batches-py" in str(info.value)


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(DataError, match="Could not download CIFAR-10"):
        load_cifar10(tmp_path, download=True)


def test_corrupt_batch_file_is_named(tmp_path):
    root = write_cifar10(tmp_path, per_batch=20, batches=2, test=10)
    bad = root / CIFAR10_FOLDER / "data_batch_2"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DataError, match="data_batch_2"):
        load_cifar10(root)


@pytest.mark.parametrize(
    "missing, message",
    [
        ("test_batch", "has training batches but no test_batch.*Copy test_batch there"),
        ("data_batch_1", "has test_batch but no data_batch_\\* training files"),
    ],
)
def test_a_missing_batch_file_is_named(tmp_path, missing, message):
    root = write_cifar10(tmp_path, per_batch=20, batches=1, test=10)
    (root / CIFAR10_FOLDER / missing).unlink()
    with pytest.raises(DataError, match=message):
        load_cifar10(root)


def test_data_and_labels_of_different_lengths(tmp_path):
    root = write_cifar10(tmp_path, per_batch=20, batches=1, test=10)
    path = root / CIFAR10_FOLDER / "test_batch"
    entry = pickle.loads(path.read_bytes())
    entry["labels"] = entry["labels"][:-3]
    path.write_bytes(pickle.dumps(entry))
    with pytest.raises(DataError, match="10 images but 7 labels"):
        load_cifar10(root)


def test_stratified_fraction_is_seeded_and_balanced():
    labels = np.repeat(np.arange(10), 40)
    a = stratified_indices(labels, 0.25, seed=3)
    assert np.array_equal(a, stratified_indices(labels, 0.25, seed=3))
    assert not np.array_equal(a, stratified_indices(labels, 0.25, seed=4))
    assert np.bincount(labels[a]).tolist() == [10] * 10
    assert len(set(a)) == len(a)


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5, "half"])
def test_fraction_outside_unit_interval(fraction):
    with pytest.raises(ParameterError, match="fraction"):
        stratified_indices(np.arange(10), fraction, seed=0)


def test_fraction_that_empties_a_class():
    labels = np.repeat(np.arange(10), 5)
    with pytest.raises(ParameterError, match="no image"):
        stratified_indices(labels, 0.05, seed=0)


def test_validation_split_is_disjoint_and_stratified(cifar_dir):
    train, _ = load_cifar10(cifar_dir)
    fit_part, val = split_train_val(train, 0.25, seed=0)
    assert len(fit_part) + len(val) == len(train)
    assert np.bincount(val.labels.numpy()).tolist() == [3] * 10
    seen = {bytes(img.numpy()) for img in fit_part.images}
    assert not any(bytes(img.numpy()) in seen for img in val.images)


def _rewrite_batch(path, **change):
    """Rewrite one pickled batch with some of its entries changed."""
    entry = pickle.loads(path.read_bytes())
    entry.update(change)
    path.write_bytes(pickle.dumps(entry))


@pytest.mark.parametrize("batch, name", [("data_batch_1", "training"), ("test_batch", "test")])
def test_labels_outside_the_classes_are_named(tmp_path, batch, name):
    root = write_cifar10(tmp_path, per_batch=20, batches=1, test=10)
    path = root / CIFAR10_FOLDER / batch
    labels = pickle.loads(path.read_bytes())["labels"]
    _rewrite_batch(path, labels=[10] + labels[1:])
    with pytest.raises(
        DataError, match=f"CIFAR {name} labels range over 0..10 but there are 10 classes"
    ):
        load_cifar10(root)


def test_images_of_another_shape_are_named(tmp_path):
    root = write_cifar10(tmp_path, per_batch=20, batches=1, test=10)
    path = root / CIFAR10_FOLDER / "data_batch_1"
    _rewrite_batch(
        path, data=np.zeros((20, 3 * 28 * 28), dtype=np.uint8)
    )  # 28x28 pixels, not 32x32
    with pytest.raises(DataError, match=r"holds data of shape \(20, 2352\); expected \(N, 3072\)"):
        load_cifar10(root)


def test_a_damaged_meta_file_costs_only_the_class_names(tmp_path):
    root = write_cifar10(tmp_path, per_batch=20, batches=1, test=10)
    (root / CIFAR10_FOLDER / "batches.meta").write_bytes(b"damaged")
    train, _ = load_cifar10(root)
    assert train.classes[:2] == ("airplane", "automobile") and len(train) == 20


def test_max_train_images_caps_the_pool_with_every_class_kept_in_proportion(cifar_dir, tmp_path):
    from conftest import hw1_settings
    from helpers import hw1

    full = hw1.load_data(hw1_settings(cifar_dir, tmp_path, max_train_images=None))
    capped = hw1.load_data(hw1_settings(cifar_dir, tmp_path, max_train_images=60))
    assert len(full.pool) == 120 and len(capped.pool) == 60  # 12 images of each class -> 6
    assert capped.pool.labels.bincount().tolist() == [6] * 10
    assert len(capped.train) + len(capped.val) == 60  # validation is held out of the capped pool
