"""PKU-MMD's own detection metric (the dataset's ``evaluate.py``): mAP_action, mAP_video, 2DAP.

Papers quote it next to the per-class VOC AP of :func:`pcm3.tasks.detection_metrics.detection_map`
(the PCM3 authors' evaluation). It differs in how proposals are matched and how AP is summed:

- **Overlap, no one-to-one matching.** A proposal's overlap is its best IoU with any
  ground-truth interval of its class in its recording; it hits that interval when the IoU is at
  least the threshold (ties: the interval listed last). Several proposals may hit one interval;
  the interval then counts once: with ``k`` proposals kept, precision = intervals hit / ``k``
  and recall = intervals hit / intervals.
- **AP.** Proposals are ranked by score. Starting from all of them, the lowest-scored one is
  dropped at a time (of equal scores, the one listed first goes first). Each time a proposal
  that hits an interval is dropped, precision and recall are recomputed, the running maximum of
  precision is kept, and AP grows by that maximum times the drop in recall. Dropping a proposal
  that hits nothing changes neither (precision is not recomputed there). A class without ground
  truth, or without proposals, has AP 0.
- **Averages.** ``mAP_action``: the mean per-class AP over *all* ``K`` class slots (classes
  absent from the ground truth count as 0). ``mAP_video``: the mean over recordings of the AP of
  that recording's proposals (every class). ``2DAP``: the mean over the 20 thresholds
  ``(r + 1) * 0.05``, ``r = 0..19`` (0.05 ... 1.0, computed as that float expression), of the AP of
  all proposals pooled.

Intervals are ``[start, end)``; the IoU is :func:`~pcm3.tasks.detection_metrics.temporal_iou`
(``overlap / union`` in frames), the value the script's ``(min(e) - max(s)) / (max(e) - min(s))``
gives for intersecting intervals. Values are in [0, 1].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from pcm3.errors import DataError, Pcm3Error
from pcm3.tasks.detection_metrics import Segment, temporal_iou

# (recording, label, start, end, score) and (recording, label, start, end)
Proposal = tuple[object, int, int, int, float]
Truth = tuple[object, int, int, int]

TWO_D_THRESHOLDS = tuple((r + 1) * 0.05 for r in range(20))


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise Pcm3Error(f"pkummd metric: an IoU threshold must be in (0, 1], got {threshold}")


def match_proposals(proposals: Sequence[Proposal], truth: Sequence[Truth], threshold: float) -> np.ndarray:
    """``(n,)`` index into ``truth`` of the interval each proposal hits (best IoU ``>= threshold``
    among the intervals of its class and recording; ties: the last listed), or -1."""
    _check_threshold(threshold)
    by_key: dict[tuple[object, int], list[int]] = defaultdict(list)
    for j, (recording, label, _, _) in enumerate(truth):
        by_key[recording, int(label)].append(j)
    spans = np.array([[s, e] for _, _, s, e in truth], dtype=np.float64).reshape(-1, 2)
    hit = np.full(len(proposals), -1, dtype=np.int64)
    for i, (recording, label, start, end, _) in enumerate(proposals):
        candidates = by_key.get((recording, int(label)))
        if not candidates:
            continue
        iou = np.atleast_1d(temporal_iou(np.array([start, end], dtype=np.float64), spans[candidates]))
        iou = np.where(iou >= threshold, iou, -1.0)
        if iou.max() < 0:
            continue
        hit[i] = candidates[len(iou) - 1 - int(np.argmax(iou[::-1]))]  # last of the ties
    return hit


def pkummd_average_precision(proposals: Sequence[Proposal], truth: Sequence[Truth],
                             threshold: float) -> float:
    """The script's ``ap``: proposals dropped from the lowest score up (see the module docstring)."""
    hit = match_proposals(proposals, truth, threshold)
    num_truth = len(truth)
    hits_per_truth = np.bincount(hit[hit >= 0], minlength=num_truth)
    covered = int((hits_per_truth > 0).sum())

    def precision_recall(kept: int) -> tuple[float, float]:
        if kept == 0 or num_truth == 0:
            return 0.0, 0.0
        return covered / kept, covered / num_truth

    best_precision, last_recall = precision_recall(len(proposals))
    scores = np.array([p[4] for p in proposals], dtype=np.float64)
    kept, ap = len(proposals), 0.0
    for i in np.argsort(scores, kind="stable"):  # ascending; equal scores: listed first, dropped first
        kept -= 1
        j = hit[i]
        if j < 0:
            continue
        hits_per_truth[j] -= 1
        covered -= int(hits_per_truth[j] == 0)
        precision, recall = precision_recall(kept)
        best_precision = max(best_precision, precision)
        ap += best_precision * (last_recall - recall)
        last_recall = recall
    return float(ap)


def _truth_rows(recording: object, gt: np.ndarray, num_classes: int) -> list[Truth]:
    gt = np.asarray(gt)
    if gt.size == 0:
        return []
    if gt.ndim != 2 or gt.shape[1] != 3:
        raise DataError(f"ground truth must be (G, 3) rows (label, start, end), got {gt.shape}",
                        sample=str(recording))
    rows = [(recording, int(c), int(s), int(e)) for c, s, e in gt.astype(np.int64)]
    bad = [r[1:] for r in rows if not (0 <= r[1] < num_classes and r[3] > r[2])]
    if bad:
        raise DataError(f"ground truth rows (label, start, end) need label in [0, {num_classes}) and "
                        f"end > start, got {bad[:3]}", sample=str(recording))
    return rows


def pkummd_metrics(predictions: Mapping[object, Sequence[Segment]], ground_truth: Mapping[object, np.ndarray],
                   num_classes: int, iou_thresholds: Sequence[float] = (0.5,),
                   ignored_classes: Collection[int] = ()) -> dict:
    """PKU-MMD's metrics of ``predictions`` (per recording, :class:`Segment` s) against
    ``ground_truth`` (per recording, ``(G, 3)`` rows ``(label, start, end)``, end exclusive).

    Recordings are the keys of either mapping (each counts once in ``mAP_video``). Classes in
    ``ignored_classes`` are left out everywhere: their intervals, their proposals, their slots.

    Returns ``{"mAP_action@t", "mAP_video@t", "per_class_ap@t": {label: AP}}`` for each threshold
    ``t`` (key ``f"{t:g}"``) and ``"2DAP"``; values in [0, 1].
    """
    ignored = {int(c) for c in ignored_classes}
    truth = [row for rec, gt in ground_truth.items() for row in _truth_rows(rec, gt, num_classes)
             if row[1] not in ignored]
    proposals: list[Proposal] = []
    for rec, segments in predictions.items():
        for seg in segments:
            if not 0 <= int(seg.label) < num_classes:
                raise DataError(f"prediction label {seg.label} outside [0, {num_classes})", sample=str(rec))
            if int(seg.label) not in ignored:
                proposals.append((rec, int(seg.label), int(seg.start), int(seg.end), float(seg.score)))
    slots = [c for c in range(num_classes) if c not in ignored]
    recordings = list(dict.fromkeys([*ground_truth, *predictions]))
    if not slots or not recordings:
        raise Pcm3Error("pkummd metric: needs at least one class slot and one recording")
    by_class_p, by_class_t = defaultdict(list), defaultdict(list)
    by_rec_p, by_rec_t = defaultdict(list), defaultdict(list)
    for p in proposals:
        by_class_p[p[1]].append(p)
        by_rec_p[p[0]].append(p)
    for t in truth:
        by_class_t[t[1]].append(t)
        by_rec_t[t[0]].append(t)
    result: dict = {}
    for threshold in iou_thresholds:
        per_class = {c: pkummd_average_precision(by_class_p[c], by_class_t[c], threshold) for c in slots}
        per_video = [pkummd_average_precision(by_rec_p[r], by_rec_t[r], threshold) for r in recordings]
        result[f"mAP_action@{threshold:g}"] = float(np.mean(list(per_class.values())))
        result[f"mAP_video@{threshold:g}"] = float(np.mean(per_video))
        result[f"per_class_ap@{threshold:g}"] = per_class
    result["2DAP"] = float(np.mean([pkummd_average_precision(proposals, truth, t) for t in TWO_D_THRESHOLDS]))
    return result
