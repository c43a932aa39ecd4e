import numpy as np
import torch
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from helpers.core.metrics import ConfusionMeter, classification_summary, prf_from_confusion


def sklearn_macro(y, p):
    prec, rec, f1, _ = precision_recall_fscore_support(y, p, average="macro", zero_division=0)
    return {"accuracy": accuracy_score(y, p), "precision": prec, "recall": rec, "f1": f1}


def test_meter_matches_scikit_learn_over_batches():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    logits = rng.normal(size=(500, 10))
    logits[np.arange(500), y] += rng.normal(1.0, 1.5, 500)  # partly right
    meter = ConfusionMeter(10, torch.device("cpu"))
    for s in range(0, 500, 128):
        meter.update(
            torch.tensor(0.5), torch.tensor(logits[s : s + 128]), torch.tensor(y[s : s + 128])
        )
    got = meter.compute()
    want = sklearn_macro(y, logits.argmax(1))
    for key in want:
        assert abs(got[key] - want[key]) < 1e-9, key
    assert abs(got["loss"] - 0.5) < 1e-9


def test_classes_never_predicted_count_as_zero():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 0, 1, 0, 1])  # class 2 never predicted
    cm = np.zeros((3, 3), int)
    np.add.at(cm, (y, p), 1)
    got = prf_from_confusion(cm)
    want = sklearn_macro(y, p)
    assert all(abs(got[k] - want[k]) < 1e-9 for k in want)


def test_summary_has_report_fields():
    y = np.array([0, 1, 2, 2])
    p = np.array([0, 2, 2, 2])
    s = classification_summary(y, p, ["a", "b", "c"])
    assert s["test_accuracy"] == 0.75
    assert s["per_class"]["b"]["recall"] == 0.0 and s["per_class"]["c"]["support"] == 2
    assert s["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    assert abs(s["macro_f1"] - sklearn_macro(y, p)["f1"]) < 1e-12
