"""Label-free thresholds on anomaly scores, and the test metrics (TPR, TNR, AUROC, AUPR)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score, roc_curve

from ..core.errors import ParameterError

THRESHOLD_METHODS = ("auto", "quantile", "balanced")
KNOWN_QUANTILE = 0.05  # "auto": the low end of the known anomalies' scores
# A signal enters the combined score when it ranks the known anomalies above the validation
# normals at least this well (AUROC; 0.5 = a coin toss): on the tiles of docs/hw2.md the
# image-wide signals scored 0.45-0.55 on the known blowholes and only added noise.
SIGNAL_FLOOR = 0.6
# ... and only when that AUROC is above a coin toss with confidence: its one-sided 95 % lower
# bound (Hanley & McNeil's standard error, which grows as the known anomalies get fewer)
# must exceed 0.5. 0.60 on 20 known blowholes and 200 validation normals has a bound of
# 0.49 (out); 0.94 on the course's 154 anomalies and 3,001 normals, 0.92 (in).
SIGNAL_CONFIDENCE_Z = 1.645
# Below this AUROC of the chosen score on validation normals against known anomalies the
# notebook says plainly that the detector cannot reliably separate them (the course's
# frames: 0.99 and more; the tiles of docs/hw2.md: 0.81, and 0.73 on their test images).
SEPARATION_WARNING = 0.9
MIN_KNOWN = 5  # known anomalies needed before they choose signals or judge the separation
# A signal fitted to the training normals without training a network (texture, local) is
# left out when the held-out validation normals score above unseen training normals with
# at least this AUROC (Detector.scene_gaps): its statistics have learnt the training
# images' scenes (the course's frames: local 0.94, new scenes looked anomalous and its test
# TNR fell to 0.80), not what a normal image looks like (tiles: 0.57; texture 0.53-0.54).
SCENE_GAP = 0.75


def quantile_threshold(normal_scores: np.ndarray, target_tnr: float) -> float:
    """The score below which ``target_tnr`` of the (validation) normal images fall."""
    if not 0 < target_tnr < 1:
        raise ParameterError(f"target_tnr={target_tnr!r} must lie in (0, 1), e.g. 0.98.")
    return float(np.quantile(normal_scores, target_tnr))


def balanced_threshold(normal_scores: np.ndarray, anomaly_scores_: np.ndarray) -> float:
    """The threshold that maximises TPR + TNR on normal and known-anomalous images.

    Of the thresholds that tie, the midpoint of the widest gap is taken, so the
    threshold does not sit on top of one image's score.
    """
    scores = np.concatenate([normal_scores, anomaly_scores_])
    labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomaly_scores_))]
    fpr, tpr, thresholds = roc_curve(labels, scores)
    j = tpr - fpr
    best = int(np.argmax(j))
    upper = thresholds[best]  # "score >= upper" is flagged
    below = scores[scores < upper]
    lower = below.max() if len(below) else upper
    return float((upper + lower) / 2) if np.isfinite(upper) else float(lower)


def informed_threshold(
    normal_scores: np.ndarray, known_anomalies: np.ndarray, target_tnr: float
) -> float:
    """The quantile threshold, moved halfway down towards the known anomalies if they need it.

    The ``target_tnr`` quantile of the validation normals is the threshold, as long as the
    known anomalies' low end (their 5 % quantile) lies above it. When more of them would
    be missed, the threshold is the midpoint of the two: the known kind is then not
    ignored, yet cannot drag the threshold into the normals. Known anomalies never raise
    it: on unseen scenes the normals score higher than validation normals do, and a
    threshold pushed up towards the known kind misses the weaker, unseen kinds
    (measured in docs/hw2.md). With no known anomalies it is the quantile threshold.
    """
    quantile = quantile_threshold(normal_scores, target_tnr)
    if len(known_anomalies) == 0:  # nothing known to move towards
        return quantile
    known_low = float(np.quantile(known_anomalies, KNOWN_QUANTILE))
    return (quantile + known_low) / 2 if known_low < quantile else quantile


def choose_threshold(
    method: str, val_normal: np.ndarray, known_anomalies: np.ndarray | None, target_tnr: float
) -> tuple[float, str]:
    """Pick the threshold without test labels; returns it and a description of how.

    ``quantile``: the ``target_tnr`` quantile of the validation normals. ``auto``: the
    same, moved halfway down towards the known anomalies' low end when that lies below it
    (:func:`informed_threshold`). ``balanced``: max TPR + TNR on validation normals and
    known anomalies alone (it fits the known kind and misses weaker, unseen kinds).
    """
    if method not in THRESHOLD_METHODS:
        raise ParameterError(
            f"threshold_method={method!r} is unknown; choose one of {', '.join(THRESHOLD_METHODS)}."
        )
    has_known = known_anomalies is not None and len(known_anomalies) > 0
    if method == "balanced" and not has_known:
        raise ParameterError(
            "threshold_method='balanced' needs known anomalies (an anomalies/ "
            "folder); use 'quantile' or 'auto'."
        )
    quantile_rule = f"{target_tnr:.1%} quantile of {len(val_normal)} validation normals"
    if method == "balanced" and known_anomalies is not None:  # not None: refused above
        return (
            balanced_threshold(val_normal, known_anomalies),
            f"max TPR+TNR on {len(val_normal)} validation normals and "
            f"{len(known_anomalies)} known anomalies",
        )
    if method == "auto" and has_known and known_anomalies is not None:
        threshold = informed_threshold(val_normal, known_anomalies, target_tnr)
        if threshold < quantile_threshold(val_normal, target_tnr):
            return (
                threshold,
                f"halfway from the {quantile_rule} down to the {KNOWN_QUANTILE:.0%} "
                f"quantile of {len(known_anomalies)} known anomalies",
            )
    return quantile_threshold(val_normal, target_tnr), quantile_rule


def separation(normal_scores: np.ndarray, anomaly_scores_: np.ndarray) -> float:
    """AUROC of anomalies against normals: 1 when every anomaly scores above every normal."""
    labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomaly_scores_))]
    return float(roc_auc_score(labels, np.r_[normal_scores, anomaly_scores_]))


def auroc_lower_bound(
    auroc: float, n_anomalies: int, n_normals: int, z: float = SIGNAL_CONFIDENCE_Z
) -> float:
    """One-sided lower confidence bound of an AUROC measured on ``n_anomalies`` and
    ``n_normals`` images: ``auroc - z * SE``, SE from Hanley & McNeil (1982)."""
    a = min(max(auroc, 1e-6), 1 - 1e-6)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    variance = (a * (1 - a) + (n_anomalies - 1) * (q1 - a * a) + (n_normals - 1) * (q2 - a * a)) / (
        n_anomalies * n_normals
    )
    return float(auroc - z * np.sqrt(max(variance, 0.0)))


def choose_signals(
    val: dict[str, np.ndarray],
    known: dict[str, np.ndarray] | None,
    candidates: dict[str, str],
    scene_gaps: dict[str, float] | None = None,
    floor: float = SIGNAL_FLOOR,
) -> tuple[list[str], list[dict]]:
    """The candidate signals (name -> its score's key) to combine, chosen without test labels.

    A candidate is left out when its ``scene_gaps`` entry (AUROC of validation against
    training normals, measured for the signals fitted without a network) reaches
    ``SCENE_GAP``, or when it ranks the known anomalies above the validation normals with
    an AUROC below ``floor`` or not above chance with confidence (:func:`auroc_lower_bound`
    at most 0.5; judged with ``MIN_KNOWN`` or more known anomalies). When all
    are left out, the one that sees the known anomalies best (else the first) stays.
    Returns the chosen names and a row per candidate (its AUROCs, whether kept)."""
    gaps = scene_gaps or {}
    judged = known is not None and len(next(iter(known.values()))) >= MIN_KNOWN
    # each candidate's AUROC on the known anomalies; none when they are too few to judge
    aurocs: dict[str, float] = {}
    lower: dict[str, float] = {}
    if judged and known is not None:
        for c, key in candidates.items():
            aurocs[c] = separation(val[key], known[key])
            lower[c] = auroc_lower_bound(aurocs[c], len(known[key]), len(val[key]))
    sure = {c: aurocs[c] >= floor and lower[c] > 0.5 for c in aurocs}
    kept = [c for c in candidates if gaps.get(c, 0.0) < SCENE_GAP and (not judged or sure[c])]
    if not kept:
        kept = [max(aurocs, key=aurocs.__getitem__) if judged else next(iter(candidates))]
    rows = [
        {
            "signal": c,
            "known_auroc": round(aurocs[c], 4) if c in aurocs else None,
            "known_auroc_lower": round(lower[c], 4) if c in lower else None,
            "scene_gap": None if c not in gaps else round(gaps[c], 4),
            "kept": c in kept,
        }
        for c in candidates
    ]
    return kept, rows


def separation_warning(val_normal: np.ndarray, known_anomalies: np.ndarray | None) -> str | None:
    """A plain warning when the validation normals and known anomalies say that the score
    cannot separate the two (or a note that this cannot be checked); None when it can."""
    if known_anomalies is None or len(known_anomalies) < MIN_KNOWN:
        return (
            "no known anomalies (fewer than 5 in anomalies/): whether this score separates "
            "anomalies "
            "from normals cannot be checked before the test labels; add a few known anomalies to "
            "see it."
        )
    auroc = separation(val_normal, known_anomalies)
    if auroc >= SEPARATION_WARNING:
        return None
    return (
        f"WARNING: the detector cannot reliably separate anomalies from normals here: the "
        f"{len(known_anomalies)} known anomalies score like the {len(val_normal)} validation "
        "normals "
        f"(AUROC {auroc:.2f}; 0.5 is a coin toss, 1.0 perfect). The threshold below flags images, "
        "but "
        "expect many misses and false alarms; a larger image_size or more normal training images "
        "may help."
    )


def anomaly_report(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """TPR, TNR, balanced accuracy, AUROC, AUPR and the confusion matrix at ``threshold``
    (anomaly = positive = score at or above the threshold)."""
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    tpr = tp / max(tp + fn, 1)
    tnr = tn / max(tn + fp, 1)
    return {
        "tpr": float(tpr),
        "tnr": float(tnr),
        "balanced_accuracy": float((tpr + tnr) / 2),
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr": float(average_precision_score(labels, scores)),
        "threshold": float(threshold),
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
        "test_normals": int((labels == 0).sum()),
        "test_anomalies": int((labels == 1).sum()),
    }


def oracle_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold maximising TPR + TNR *on the test labels*: for reporting only."""
    labels = np.asarray(labels)
    return balanced_threshold(np.asarray(scores)[labels == 0], np.asarray(scores)[labels == 1])
