"""hw1 with few labels: the per-fraction budget and recipe, self-training, and the recipe
search that must never read the test set."""

import json

import pytest
import torch

from conftest import CPU, HW1_BASE, hw1_settings
from helpers import hw1
from helpers.core.errors import ParameterError
from helpers.core.images import ImageSet
from helpers.core.objectives import Classification, mixing
from helpers.core.trainer import FitConfig
from helpers.core.training import fit
from helpers.hw1 import presets
from helpers.hw1.presets import fraction_tuning
from helpers.hw1.self_training import select_pseudo_labels, start_student, with_pseudo_labels
from helpers.hw1.settings import resolve_hw1
from helpers.hw1.steps import budget


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


def test_every_fraction_trains_for_the_steps_of_all_the_labels(cifar_dir, tmp_path, monkeypatch):
    batches = []
    loss = Classification.loss
    monkeypatch.setattr(
        Classification,
        "loss",
        lambda self, m, x, y, g: batches.append(len(y)) or loss(self, m, x, y, g),
    )
    seen = {}
    for fraction in (1.0, 0.5, 0.2):
        s = hw1_settings(cifar_dir, tmp_path / f"{fraction}", fraction=fraction, epochs=1)
        data = hw1.load_data(s)
        batches.clear()
        hw1.train(s, hw1.build_model(s), data, CPU, tmp_path / f"run{fraction}")
        seen[fraction] = (sum(batches), len(data.train), data.all_labels)
    everything = seen[1.0][2]
    assert seen[1.0][1] == everything  # 100 %: one pass
    for images_seen, _, all_labels in seen.values():
        assert all_labels == everything
        # the images of 100 % of the labels, but for the last incomplete batch (dropped;
        # a batch is at most 30 images, fewer when the labelled set is smaller)
        assert abs(images_seen - seen[1.0][0]) < 30
    assert seen[0.2][1] < seen[0.5][1] < everything


def test_the_cpu_recipe_caps_an_epoch_whatever_the_training_set_size():
    s = resolve_hw1("cpu", **HW1_BASE)
    cap = presets.HW1_PRESETS["cpu"]["max_epoch_images"]
    assert budget(s, 5000) == {"epoch_images": cap}  # 5,000 images: the time budget
    assert budget(s, cap // 2) == {"epoch_images": cap // 2}  # fewer: one pass
    assert budget(resolve_hw1("full", **HW1_BASE), 45000) == {"epoch_images": 45000}
    assert budget(resolve_hw1("cpu", **HW1_BASE, repeats=3), 5000) == {"repeats": 3}


def test_an_epoch_of_epoch_images_cuts_its_last_pass_short_and_covers_every_image():
    seen = []

    class Recording(Classification):
        def loss(self, model, x, y, generator):
            seen.append(x[:, 0, 0, 0].clone())
            return super().loss(model, x, y, generator)

    ids = torch.arange(7, dtype=torch.uint8)
    images = ImageSet(ids.view(7, 1, 1, 1).expand(7, 3, 4, 4).contiguous(), ids % 2, ("a", "b"))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 2))
    config = FitConfig(
        epochs=1, batch_size=4, lr=0.01, epoch_images=17, progress=False, track_gradients=False
    )
    fit(model, images, None, Recording(2), config, CPU)
    drawn = (torch.cat(seen) * 255).round().long()
    assert len(drawn) == 16  # 17 images asked for: 4 full batches, the rest dropped
    counts = torch.bincount(drawn, minlength=7)
    assert counts.min() >= 2 and counts.max() <= 3  # two whole passes, then part of a third
    assert sorted(drawn[:7].tolist()) == list(range(7))  # the first pass sees every image once


def test_an_epoch_passes_over_the_images_repeats_times():
    seen = []

    class Counting(Classification):
        def loss(self, model, x, y, generator):
            seen.append(len(y))
            return super().loss(model, x, y, generator)

    images = ImageSet(torch.zeros(20, 3, 8, 8, dtype=torch.uint8), torch.arange(20) % 2, ("a", "b"))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
    config = FitConfig(
        epochs=2, batch_size=5, lr=0.01, repeats=3, progress=False, track_gradients=False
    )
    result = fit(model, images, None, Counting(2), config, CPU)
    assert sum(seen) == 2 * 3 * 20 and len(seen) == 2 * 12 and len(result.history) == 2


def test_repeats_must_be_a_positive_integer():
    with pytest.raises(ParameterError, match="repeats"):
        FitConfig(epochs=1, batch_size=2, lr=0.1, repeats=0)
    with pytest.raises(ParameterError, match="repeats=0"):
        resolve_hw1("cpu", **HW1_BASE, repeats=0)


def test_the_nearest_tuned_fraction_replaces_the_preset_and_explicit_values_win(monkeypatch):
    tuning = {1.0: {}, 0.5: {"lr": 0.07}, 0.1: {"lr": 0.03, "weight_decay": 5e-3}}
    monkeypatch.setitem(presets.HW1_FRACTION_TUNING, "cpu", tuning)
    assert fraction_tuning("cpu", 0.12) == (0.1, {"lr": 0.03, "weight_decay": 5e-3})
    assert fraction_tuning("cpu", 0.3)[0] == 0.5  # log scale: 0.3 is nearer 0.5 than 0.1
    s = resolve_hw1("cpu", **{**HW1_BASE, "fraction": 0.1})
    assert (s.tuned_for, s.lr, s.weight_decay) == (0.1, 0.03, 5e-3)
    s = resolve_hw1("cpu", **{**HW1_BASE, "fraction": 0.1, "lr": 0.2})
    assert s.lr == 0.2 and s.weight_decay == 5e-3
    s = resolve_hw1("cpu", **HW1_BASE)
    assert s.lr == presets.HW1_PRESETS["cpu"]["lr"] and s.tuned_for == 1.0


def test_pseudo_labels_keep_the_confident_most_of_each_class_only():
    probs = torch.tensor(
        [
            [0.90, 0.05, 0.05],  # class 0, confident
            [0.60, 0.20, 0.20],  # class 0, less
            [0.95, 0.03, 0.02],  # class 0, most confident
            [0.10, 0.80, 0.10],  # class 1
            [0.30, 0.40, 0.30],  # class 1, below the threshold
            [0.20, 0.20, 0.60],  # class 2
        ]
    )
    # share 1: quota round(6 / 3) = 2 per class; threshold 0.5 drops row 4
    chosen = select_pseudo_labels(probs, share=1.0, threshold=0.5)
    assert chosen.index.tolist() == [0, 2, 3, 5]
    assert chosen.labels.tolist() == [0, 0, 1, 2]
    # share 0.5: quota 1 per class, the most confident of each
    assert select_pseudo_labels(probs, share=0.5, threshold=0.0).index.tolist() == [2, 3, 5]
    assert len(select_pseudo_labels(probs, share=1.0, threshold=0.99)) == 0


def test_the_student_learns_true_labels_and_pseudo_labels_never_the_hidden_ones():
    classes = ("a", "b", "c")
    labelled = ImageSet(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]), classes)
    hidden = torch.full((6,), 2)  # the unlabelled images' own labels: never to be read
    unlabelled = ImageSet(torch.ones(6, 3, 4, 4, dtype=torch.uint8), hidden, classes)
    probs = torch.eye(3).repeat(2, 1)  # two confident predictions per class
    pseudo = select_pseudo_labels(probs, share=1.0, threshold=0.5)
    combined = with_pseudo_labels(labelled, unlabelled, pseudo)
    assert combined.labels.tolist() == [0, 1] + [0, 1, 2, 0, 1, 2]
    assert combined.images[2:].eq(1).all() and combined.images[:2].eq(0).all()


def test_self_training_needs_unlabelled_images_and_a_matching_teacher(cifar_dir, tmp_path):
    with pytest.raises(ParameterError, match="fraction < 1"):
        hw1_settings(cifar_dir, tmp_path, self_training=True)
    with pytest.raises(ParameterError, match="checkpoints/best.pt"):
        hw1_settings(cifar_dir, tmp_path, fraction=0.5, self_training=True, teacher=str(tmp_path))
    with pytest.raises(ParameterError, match="only used with self_training"):
        hw1_settings(cifar_dir, tmp_path, fraction=0.5, teacher=str(tmp_path))
    with pytest.raises(ParameterError, match="pseudo_share"):
        hw1_settings(cifar_dir, tmp_path, fraction=0.5, self_training=True, pseudo_share=0)


def test_self_training_trains_a_student_on_labels_and_pseudo_labels(cifar_dir, tmp_path):
    s = hw1_settings(
        cifar_dir, tmp_path, fraction=0.5, epochs=1, self_training=True, pseudo_threshold=0.0
    )
    data = hw1.load_data(s)
    teacher = hw1.build_model(s)
    run = tmp_path / "run"
    teacher_result = hw1.train(s, teacher, data, CPU, run)
    (run / "params.json").write_text(json.dumps(s.as_dict()))

    def reuse(folder: str, **changes) -> tuple:
        """Train with ``teacher=folder``: the finished run's model is loaded, not trained."""
        t = hw1_settings(
            cifar_dir, tmp_path, fraction=0.5, epochs=1, self_training=True, teacher=folder,
            **changes,
        )  # fmt: skip
        loaded = hw1.build_model(t)
        return loaded, hw1.train(t, loaded, data, CPU, tmp_path / "other")

    # a finished run serves as the teacher of another self-training run: no retraining
    loaded, again = reuse(str(run))
    assert again.history == teacher_result.history and same_weights(loaded, teacher)

    student, result, record = hw1.self_train(s, teacher, data, CPU, run)
    assert student is not teacher and len(result.history) == 1
    quota = round(s.pseudo_share * len(data.unlabelled) / 10)  # per class, at most
    assert 0 < record["pseudo_labels"] <= 10 * quota < len(data.unlabelled)
    assert record["trained_images"] == len(data.train) + record["pseudo_labels"]
    assert (run / "student" / "checkpoints" / "best.pt").exists()
    assert (run / "student" / "history.json").exists()

    # now the run's final model is its student: reused, it teaches a second round
    loaded, again = reuse(str(run))
    assert again.history == result.history and same_weights(loaded, student)
    assert not same_weights(loaded, teacher)
    with pytest.raises(ParameterError, match="seed=0"):
        reuse(str(run), seed=1)


def test_the_student_starts_where_the_teacher_started_or_from_the_teacher(cifar_dir, tmp_path):
    s = hw1_settings(
        cifar_dir, tmp_path, fraction=0.5, self_training=True, student_from_teacher=False
    )
    data = hw1.load_data(s)
    teacher = hw1.build_model(s.__class__(**{**s.as_dict(), "seed": 1}))  # other weights
    assert same_weights(start_student(s, teacher, data, CPU), hw1.build_model(s))
    s.student_from_teacher = True
    student = start_student(s, teacher, data, CPU)
    assert student is not teacher and same_weights(student, teacher)
    next(student.parameters()).data.add_(1.0)  # a copy: training it leaves the teacher alone
    assert not same_weights(student, teacher)


def test_a_student_going_on_from_its_teacher_gets_the_presets_learning_rate():
    base = {**HW1_BASE, "fraction": 0.1, "self_training": True}
    s = resolve_hw1("cpu", **base)
    assert s.student_from_teacher and s.student_lr == presets.HW1_PRESETS["cpu"]["student_lr"]
    assert resolve_hw1("full", **base).student_lr == presets.HW1_PRESETS["full"]["student_lr"]
    assert s.student_lr < s.lr  # it goes on from trained weights: no warm-up to the full LR
    assert resolve_hw1("cpu", **base, student_lr=0.05).student_lr == 0.05  # explicit wins
    fresh = resolve_hw1("cpu", **base, student_from_teacher=False)
    assert fresh.student_lr is None  # a fresh student trains at lr, as its teacher did
    chosen = resolve_hw1("cpu", **base, student_from_teacher=False, student_lr=0.05)
    assert chosen.student_lr == 0.05
    assert resolve_hw1("cpu", **{**base, "self_training": False}).student_lr is None  # no student


@pytest.mark.parametrize(
    ("from_teacher", "student_lr", "expected"),
    [(False, None, 0.1), (False, 0.05, 0.05), (True, None, 0.03), (True, 0.05, 0.05)],
)
def test_the_student_trains_at_its_own_learning_rate_when_set(
    cifar_dir, tmp_path, monkeypatch, from_teacher, student_lr, expected
):
    from helpers.hw1 import self_training

    s = hw1_settings(
        cifar_dir,
        tmp_path,
        fraction=0.5,
        self_training=True,
        lr=0.1,
        student_from_teacher=from_teacher,
        student_lr=student_lr,
    )
    data = hw1.load_data(s)
    teacher = hw1.build_model(s)
    trained_at = []

    class Stop(Exception):
        pass

    def stand_in(taught, *args):  # records the settings the student trains with, then stops
        trained_at.append(taught.lr)
        raise Stop

    monkeypatch.setattr(self_training, "fit_labelled", stand_in)
    with pytest.raises(Stop):
        hw1.self_train(s, teacher, data, CPU, tmp_path / "run")
    assert trained_at == [expected] and s.lr == 0.1  # the teacher's settings kept


def test_the_recipe_search_never_opens_the_test_batch(cifar_dir, tmp_path, monkeypatch):
    from helpers.data import cifar
    from helpers.tools import recipe_search

    opened = []
    read = cifar._read_batch
    monkeypatch.setattr(cifar, "_read_batch", lambda path: opened.append(path.name) or read(path))
    table = recipe_search.main(
        [
            "--data-dir",
            str(cifar_dir),
            "--fraction",
            "0.5",
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--set",
            "arch=resnet18",
            "width=8",
            "batch_size=30",
            "--try",
            "lr=0.05",
            "--out",
            str(tmp_path / "search"),
        ]
    )
    assert opened and "test_batch" not in opened
    assert [row["candidate"] for row in table] != [] and {r["candidate"] for r in table} == {
        "base",
        "lr=0.05",
    }
    assert table[0]["val_score"] >= table[1]["val_score"]
    saved = json.loads((tmp_path / "search" / "f0.5" / "search.json").read_text())
    assert saved["ranking"] == table


def test_the_recipe_search_scores_a_students_settings_with_each_seeds_teacher(
    cifar_dir, tmp_path, monkeypatch
):
    from helpers.data import cifar
    from helpers.tools import recipe_search

    s = hw1_settings(cifar_dir, tmp_path, fraction=0.5, epochs=1)
    teacher_run = tmp_path / "teachers" / "t-s0"
    hw1.train(s, hw1.build_model(s), hw1.load_data(s), CPU, teacher_run)
    (teacher_run / "params.json").write_text(json.dumps(s.as_dict()))
    teacher_weights = (teacher_run / "checkpoints" / "best.pt").read_bytes()
    opened = []
    read = cifar._read_batch
    monkeypatch.setattr(cifar, "_read_batch", lambda path: opened.append(path.name) or read(path))

    def search(*seeds: str) -> list[dict]:
        return recipe_search.main(
            ["--data-dir", str(cifar_dir), "--fraction", "0.5", "--epochs", "1", "--device",
             "cpu", "--set", "arch=resnet18", "width=8", "batch_size=30", "self_training=true",
             "pseudo_threshold=0", f"teacher={tmp_path}/teachers/t-s{{seed}}",
             "--try", "mixup=0.2", "--out", str(tmp_path / "search"), "--seeds", *seeds]
        )  # fmt: skip

    with pytest.raises(ParameterError, match="t-s1"):  # seed 1 has no teacher: refused first
        search("0", "1")
    assert not opened and not (tmp_path / "search").exists()
    table = search("0")
    assert "test_batch" not in opened and {r["candidate"] for r in table} == {"base", "mixup=0.2"}
    for name in ("base", "mixup=0.2"):
        record = json.loads((tmp_path / "search" / "f0.5" / f"{name}-s0.json").read_text())
        student = tmp_path / "search" / "f0.5" / "runs" / f"{name}-s0" / "student"
        history = json.loads((student / "history.json").read_text())
        assert record["pseudo_labels"] > 0  # the student learnt from pseudo-labels ...
        assert record["val_score"] == max(h["selection_score"] for h in history)  # ... is scored
    # the teacher was read, not trained again
    assert (teacher_run / "checkpoints" / "best.pt").read_bytes() == teacher_weights


def test_mixup_blends_pairs_of_images_and_their_labels_in_training_only():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, y = torch.rand(6, 3, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    objective = Classification(3, mixup=0.4)
    seen = []
    loss, _ = objective.loss(
        lambda v: seen.append(v) or model(v), x, y, torch.Generator().manual_seed(5)
    )
    lam, perm = mixing(6, 0.4, torch.Generator().manual_seed(5), x.device)
    assert 0 < lam < 1 and sorted(perm.tolist()) == list(range(6))
    torch.testing.assert_close(seen[0], lam * x + (1 - lam) * x[perm])
    logits = model(seen[0])
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(loss, lam * ce(logits, y) + (1 - lam) * ce(logits, y[perm]))
    with torch.no_grad():  # evaluation: the plain images and labels
        plain, _ = objective.loss(model, x, y, torch.Generator())
    torch.testing.assert_close(plain, ce(model(x), y))
