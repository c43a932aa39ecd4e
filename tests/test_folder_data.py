import re
import shutil

import pytest

from helpers.core.errors import DataError
from helpers.data.anomaly_data import load_anomaly_folder


@pytest.fixture
def layout(anomaly_dir, tmp_path):
    """A private copy that a test may damage."""
    return shutil.copytree(anomaly_dir, tmp_path / "data")


def test_decodes_the_course_layout_to_one_size(anomaly_dir):
    data = load_anomaly_folder(anomaly_dir, image_size=(32, 48))
    assert data.train.images.shape == (120, 3, 32, 48)
    assert data.test.images.shape == (48, 3, 32, 48) and int(data.test.labels.sum()) == 8
    assert data.anomalies is not None and len(data.anomalies) == 8
    lines = (anomaly_dir / "test" / "test_annotation.txt").read_text().split()
    assert data.test_names[0] == lines[0] and int(data.test.labels[0]) == int(lines[1])


def test_folders_can_be_overridden(layout):
    moved = layout.parent / "elsewhere"
    (layout / "train").rename(moved)
    with pytest.raises(DataError, match="train_dir"):
        load_anomaly_folder(layout)
    assert len(load_anomaly_folder(layout, train_dir=moved).train) == 120


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_anomaly_folder(tmp_path / "nope")


def test_empty_train_folder(layout):
    for f in (layout / "train").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="no decodable images"):
        load_anomaly_folder(layout)


def _annotate(layout, text):
    (layout / "test" / "test_annotation.txt").write_text(text)


def test_annotation_naming_a_missing_file(layout):
    _annotate(layout, "t0000.jpg 0\nghost.jpg 1\n")
    with pytest.raises(DataError, match=r"line 2: ghost.jpg is not in"):
        load_anomaly_folder(layout)


def test_image_listed_twice(layout):
    _annotate(layout, "t0000.jpg 0\nt0001.jpg 0\nt0000.jpg 1\n")
    with pytest.raises(DataError, match=r"line 3: t0000.jpg is listed twice \(first on line 1\)"):
        load_anomaly_folder(layout)


def test_label_other_than_0_or_1(layout):
    _annotate(layout, "t0000.jpg 2\n")
    with pytest.raises(DataError, match="line 1: label '2'"):
        load_anomaly_folder(layout)


def test_undecodable_training_image_is_skipped_with_a_warning(layout):
    (layout / "train" / "n0003.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="skipped 1 training image"):
        data = load_anomaly_folder(layout)
    assert len(data.train) == 119 and "skipped 1" in data.notes[0]


def test_undecodable_test_image_is_an_error(layout):
    (layout / "test" / "imgs" / "t0005.jpg").write_bytes(b"broken")
    with pytest.raises(DataError, match="t0005.jpg cannot be decoded"):
        load_anomaly_folder(layout)


def test_known_anomalies_identical_to_test_images_are_dropped(layout):
    test_anomaly = next(
        line.split()[0]
        for line in (layout / "test" / "test_annotation.txt").read_text().splitlines()
        if line.endswith(" 1")
    )
    shutil.copy(layout / "test" / "imgs" / test_anomaly, layout / "anomalies" / "copy.jpg")
    data = load_anomaly_folder(layout)
    assert len(data.anomalies) == 8
    assert any("dropped 1 known anomalies" in note for note in data.notes)


def test_test_images_identical_to_training_images_are_flagged(layout):
    normals = [
        line.split()[0]
        for line in (layout / "test" / "test_annotation.txt").read_text().splitlines()
        if line.endswith(" 0")
    ]
    shutil.copy(layout / "test" / "imgs" / normals[3], layout / "train" / "copy.jpg")
    data = load_anomaly_folder(layout)
    assert data.test_in_train.tolist() == [name == normals[3] for name in data.test_names]
    assert "1 test image(s) are pixel-identical to training images" in data.notes


@pytest.mark.parametrize(
    "label, missing", [(0, r"no anomalous image \(label 1\)"), (1, r"no normal image \(label 0\)")]
)
def test_an_annotation_file_with_one_label_only_is_refused(layout, label, missing):
    """TPR, TNR and AUROC need both kinds of test image; a run on one ended "successfully"
    with TPR 0.0 and AUROC nan."""
    _annotate(layout, "".join(f"t{i:04d}.jpg {label}\n" for i in range(5)))
    annotation = layout / "test" / "test_annotation.txt"
    with pytest.raises(
        DataError,
        match=f"annotation file {re.escape(str(annotation))} lists 5 test images but {missing}",
    ):
        load_anomaly_folder(layout)


@pytest.mark.parametrize(
    "text, message",
    [
        ("t0000.jpg\n", r"line 1: expected '<file name> <0\|1>', found 't0000.jpg'"),
        ("t0000.jpg 0 extra\n", r"line 1: expected '<file name> <0\|1>'"),
        ("\n\n", "lists no images"),
    ],
)
def test_a_malformed_or_empty_annotation_file_is_named(layout, text, message):
    _annotate(layout, text)
    with pytest.raises(DataError, match=message):
        load_anomaly_folder(layout)


def test_a_missing_annotation_file_names_the_parameter_that_fixes_it(layout):
    (layout / "test" / "test_annotation.txt").rename(layout / "labels.txt")
    with pytest.raises(DataError, match="test_annotation.txt does not exist.*set annotation_file"):
        load_anomaly_folder(layout)
    assert len(load_anomaly_folder(layout, annotation_file=layout / "labels.txt").test) == 48


def test_a_bad_anomalies_dir_is_named_and_no_anomalies_folder_is_fine(layout):
    with pytest.raises(
        DataError, match="anomalies folder .*nowhere does not exist.*set anomalies_dir"
    ):
        load_anomaly_folder(layout, anomalies_dir=layout / "nowhere")
    shutil.rmtree(layout / "anomalies")  # the folder is optional
    assert load_anomaly_folder(layout).anomalies is None
