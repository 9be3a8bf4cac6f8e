"""Temporal action detection: segment proposals from per-frame probabilities, and VOC-style mAP.

Follows Simple-Skeleton-Detection ``processor/evaluate_metrics.py``:
mean-filter smoothing, ``get_segments`` proposals, per-class VOC AP averaged over the classes
present in the ground truth. Intervals are ``[start, end)`` (end exclusive) everywhere; labels are
action classes ``0..K-1`` (no background class). Deliberate differences from the official code
are named in each docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np

from pcm3.errors import DataError, Pcm3Error


class Segment(NamedTuple):
    """One detection: action class ``label`` (0-based, no background) on frames ``[start, end)``."""

    label: int
    start: int
    end: int
    score: float


def smoothing_window_bounds(length: int, half_window: int) -> tuple[np.ndarray, np.ndarray]:
    """``(T,)`` start and end (exclusive) of frame ``i``'s window ``[i - h, i + h)`` clipped to ``[0, T)``."""
    idx = np.arange(length)
    return np.maximum(idx - half_window, 0), np.minimum(idx + half_window, length)


def smooth_probabilities(prob: np.ndarray, half_window: int = 10) -> np.ndarray:
    """``(T, K)`` -> ``(T, K)`` float64 temporal mean filter over ``[i - h, i + h)`` clipped to the sequence.

    Official ``smoothing(prob, k=10)``, with the window clipped cleanly at both ends. The official
    code clips the window end to ``T - 1`` (never averaging the last frame near the end) and runs
    on probabilities background-padded to 9000 frames, so near the true end its windows mix in
    padding; here the window is clipped to the real sequence. ``half_window=0`` disables smoothing.
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2:
        raise Pcm3Error(f"smooth_probabilities: expected prob of shape (T, K), got {prob.shape}")
    if half_window < 0:
        raise Pcm3Error(f"smooth_probabilities: half_window must be >= 0, got {half_window}")
    if half_window == 0 or prob.shape[0] == 0:
        return prob.copy()
    csum = np.concatenate([np.zeros((1, prob.shape[1])), np.cumsum(prob, axis=0)])
    start, end = smoothing_window_bounds(prob.shape[0], half_window)
    return (csum[end] - csum[start]) / (end - start)[:, None]


def propose_segments(prob: np.ndarray, activity_threshold: float = 0.4, min_length: int = 1) -> list[Segment]:
    """Segments from ``(T, K + 1)`` per-frame probabilities whose column 0 is background.

    Official ``get_segments``: activity = 1 - P(background); every maximal run of frames with
    activity >= ``activity_threshold`` is one segment ``[start, end)``; its class is the argmax of
    the run-mean probabilities over the non-background columns (label = column - 1) and its score
    that class's run-mean probability. Runs shorter than ``min_length`` frames are dropped (the
    official code keeps every run, i.e. ``min_length=1``).
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[1] < 2:
        raise Pcm3Error(
            f"propose_segments: expected prob of shape (T, K + 1) with K >= 1 and column 0 = "
            f"background, got {prob.shape}"
        )
    active = (1.0 - prob[:, 0]) >= activity_threshold
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = (ends - starts) >= min_length
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return []
    csum = np.concatenate([np.zeros((1, prob.shape[1])), np.cumsum(prob, axis=0)])
    means = (csum[ends] - csum[starts]) / (ends - starts)[:, None]  # (S, K + 1)
    labels = np.argmax(means[:, 1:], axis=1)
    scores = means[np.arange(labels.size), labels + 1]
    return [
        Segment(int(c), int(s), int(e), float(p))
        for c, s, e, p in zip(labels, starts, ends, scores, strict=True)
    ]


def temporal_iou(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]) -> np.ndarray | float:
    """IoU of end-exclusive intervals ``(..., 2)`` = ``(start, end)``, broadcast; 0 when disjoint.

    ``overlap / union`` counted in frames: ``[s, e)`` has ``e - s`` frames. The official
    ``iou_ratio`` counts ``e - s + 1`` frames on inclusive ends, so it equals ours when its
    inclusive end is our end - 1. (The official evaluation feeds it the end-exclusive ends of
    ``get_segments`` and of the label files unchanged, i.e. it scores every interval one frame
    longer than it is: official(s, e) = ours(s, e + 1); the difference vanishes for long intervals.)
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    inter = np.clip(np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    union = (a[..., 1] - a[..., 0]) + (b[..., 1] - b[..., 0]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return float(iou) if iou.ndim == 0 else iou


def average_precision_voc(tp: np.ndarray, conf: np.ndarray, num_gt: int) -> float:
    """VOC2010+ all-point interpolated AP of ``(n,)`` true-positive flags scored by ``(n,)`` confidences.

    Detections are ranked by confidence, descending (stable: ties keep their input order; the
    official ``np.argsort(-score)`` is not stable). Precision is replaced by its envelope (max
    precision at any higher recall) and AP is the area under that step curve, recall running from
    0 to 1 (official ``VOCap``; same as the PASCAL VOC 2010+ devkit, not the 11-point 2007 variant).
    """
    tp, conf = np.asarray(tp, dtype=bool).ravel(), np.asarray(conf, dtype=np.float64).ravel()
    if tp.shape != conf.shape:
        raise Pcm3Error(f"average_precision_voc: tp {tp.shape} and conf {conf.shape} must match")
    if num_gt <= 0 or tp.sum() > num_gt:
        raise Pcm3Error(
            f"average_precision_voc: num_gt must be >= 1 and >= the {int(tp.sum())} true positives, "
            f"got {num_gt}"
        )
    hits = tp[np.argsort(-conf, kind="stable")]
    cum_tp = np.cumsum(hits)
    recall = np.concatenate([[0.0], cum_tp / num_gt, [1.0]])
    precision = np.concatenate([[0.0], cum_tp / np.arange(1, hits.size + 1), [0.0]])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * envelope[1:]))


def _check_intervals(seq_id: object, gt: np.ndarray, num_classes: int) -> np.ndarray:
    gt = np.asarray(gt)
    if gt.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if gt.ndim != 2 or gt.shape[1] != 3:
        raise DataError(
            f"ground truth must be (G, 3) rows (label, start, end), got {gt.shape}", sample=str(seq_id)
        )
    gt = gt.astype(np.int64)
    bad = (gt[:, 0] < 0) | (gt[:, 0] >= num_classes) | (gt[:, 2] <= gt[:, 1])
    if bad.any():
        raise DataError(
            f"ground truth rows (label, start, end) need label in [0, {num_classes}) and end > start, "
            f"got {gt[bad][:3].tolist()}",
            sample=str(seq_id),
        )
    return gt


def _match_class(
    dets: list[tuple[float, object, int, int]],
    gts: dict[object, np.ndarray],
    threshold: float,
    matching: str,
) -> np.ndarray:
    """``(n,)`` true-positive flags of one class's detections, given in ranked order."""
    taken = {seq: np.zeros(len(g), dtype=bool) for seq, g in gts.items()}
    tp = np.zeros(len(dets), dtype=bool)
    for d, (_, seq, start, end) in enumerate(dets):
        if seq not in gts or len(gts[seq]) == 0:
            continue
        iou = temporal_iou(np.array([start, end]), gts[seq])
        if matching == "best_unmatched":
            iou = np.where(taken[seq], -1.0, iou)
        j = int(np.argmax(iou))  # first of ties
        if iou[j] > 0 and iou[j] >= threshold and not taken[seq][j]:
            tp[d] = taken[seq][j] = True
    return tp


def detection_map(
    predictions: Mapping[object, Sequence[Segment]],
    ground_truth: Mapping[object, np.ndarray],
    num_classes: int,
    iou_thresholds: Sequence[float] = (0.1, 0.3, 0.5),
    matching: Literal["best_unmatched", "voc"] = "best_unmatched",
) -> dict:
    """Per-class VOC AP over all sequences, averaged over the classes present in the ground truth.

    ``predictions[seq]`` are :class:`Segment` s; ``ground_truth[seq]`` is ``(G, 3)`` rows
    ``(label, start, end)``, end exclusive, labels in ``[0, num_classes)``. Per class, its
    detections from every sequence are ranked by score (stable: sequences in mapping order, then
    list order) and matched one-to-one to ground truth of the same class and sequence:
    ``"best_unmatched"`` takes the not-yet-matched interval with the highest IoU (ties: first
    listed); ``"voc"`` (official ``compute_metric_class``) takes the highest-IoU interval among all
    and counts the detection as a false positive if that one is already matched. A match needs
    IoU >= threshold (and > 0). Detections in sequences without ground truth are false positives;
    detections of classes absent from the ground truth are ignored, as in the official "mAP_a".

    Returns ``{"mAP@t": float, "per_class_ap@t": {label: AP}}`` for each threshold ``t`` (key
    ``f"{t:g}"``, e.g. ``"mAP@0.5"``) and ``"num_classes_in_gt"``; values in [0, 1] (mAP is 0.0
    when the ground truth holds no interval).
    """
    if matching not in ("best_unmatched", "voc"):
        raise Pcm3Error(f"detection_map: matching must be 'best_unmatched' or 'voc', got {matching!r}")
    gt = {seq: _check_intervals(seq, g, num_classes) for seq, g in ground_truth.items()}
    classes = sorted({int(c) for g in gt.values() for c in g[:, 0]})
    ranked: dict[int, list[tuple[float, object, int, int]]] = {c: [] for c in classes}
    for seq, segments in predictions.items():
        for seg in segments:
            if not 0 <= int(seg.label) < num_classes:
                raise DataError(f"prediction label {seg.label} outside [0, {num_classes})", sample=str(seq))
            if int(seg.label) in ranked:
                ranked[int(seg.label)].append((float(seg.score), seq, int(seg.start), int(seg.end)))
    for c in classes:  # stable sort by descending score
        order = np.argsort(-np.array([d[0] for d in ranked[c]], dtype=np.float64), kind="stable")
        ranked[c] = [ranked[c][i] for i in order]
    result: dict = {}
    for t in iou_thresholds:
        per_class: dict[int, float] = {}
        for c in classes:
            gts_c = {seq: g[g[:, 0] == c, 1:] for seq, g in gt.items()}
            tp = _match_class(ranked[c], gts_c, float(t), matching)
            conf = np.array([d[0] for d in ranked[c]], dtype=np.float64)
            num_gt = sum(len(g) for g in gts_c.values())
            per_class[c] = average_precision_voc(tp, conf, num_gt)
        result[f"mAP@{t:g}"] = float(np.mean(list(per_class.values()))) if per_class else 0.0
        result[f"per_class_ap@{t:g}"] = per_class
    result["num_classes_in_gt"] = len(classes)
    return result


def frame_labels_from_intervals(intervals: np.ndarray, length: int, background: int = -1) -> np.ndarray:
    """``(T,)`` int64 per-frame labels from ``(G, 3)`` rows ``(label, start, end)``, end exclusive.

    Frames outside every interval get ``background``; intervals are clipped to ``[0, T)``; on
    overlap the later row wins.
    """
    intervals = np.asarray(intervals, dtype=np.int64)
    if intervals.size == 0:
        intervals = intervals.reshape(0, 3)
    if intervals.ndim != 2 or intervals.shape[1] != 3:
        raise Pcm3Error(
            f"frame_labels_from_intervals: expected (G, 3) rows (label, start, end), got {intervals.shape}"
        )
    labels = np.full(length, background, dtype=np.int64)
    for label, start, end in intervals:
        labels[max(start, 0) : max(end, 0)] = label
    return labels
