"""Detection proposals and VOC-style mAP against hand-computed values and slow loop references."""

from __future__ import annotations

import numpy as np
import pytest

from pcm3.errors import DataError, Pcm3Error
from pcm3.tasks.detection_metrics import (
    Segment,
    average_precision_voc,
    detection_map,
    frame_labels_from_intervals,
    propose_segments,
    smooth_probabilities,
    temporal_iou,
)

# ----------------------------------------------------------------------------- references


def naive_smoothing(prob: np.ndarray, h: int) -> np.ndarray:
    t = prob.shape[0]
    return np.stack([prob[max(0, i - h) : min(t, i + h)].mean(axis=0) for i in range(t)])


def official_iou_inclusive(a, b) -> float:
    """The official ``iou_ratio`` on inclusive ends, copied as a formula."""
    iw = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if iw <= 0:
        return 0.0
    return iw / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - iw)


def loop_voc_ap(tp_sorted: list[bool], num_gt: int) -> float:
    """VOC devkit ``VOCap`` written as loops, on detections already ranked."""
    rec, prec, hits = [], [], 0
    for k, hit in enumerate(tp_sorted, start=1):
        hits += hit
        rec.append(hits / num_gt)
        prec.append(hits / k)
    mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


def loop_detection_map(preds, gts, threshold: float) -> float:
    """Per class: rank by score (stable), match each to its best unmatched same-sequence GT."""
    classes = sorted({int(r[0]) for g in gts.values() for r in g})
    aps = []
    for c in classes:
        dets = [(s.score, seq, s.start, s.end) for seq, segs in preds.items() for s in segs if s.label == c]
        dets = sorted(dets, key=lambda d: -d[0])  # Python's sort is stable
        gt_c = {seq: [(int(r[1]), int(r[2])) for r in g if r[0] == c] for seq, g in gts.items()}
        used = {seq: [False] * len(v) for seq, v in gt_c.items()}
        tp = []
        for _, seq, s, e in dets:
            best, best_j = 0.0, -1
            for j, (gs, ge) in enumerate(gt_c.get(seq, [])):
                inter = max(0, min(e, ge) - max(s, gs))
                iou = inter / ((e - s) + (ge - gs) - inter)
                if not used[seq][j] and iou > best:
                    best, best_j = iou, j
            hit = best_j >= 0 and best >= threshold
            if hit:
                used[seq][best_j] = True
            tp.append(hit)
        aps.append(loop_voc_ap(tp, sum(len(v) for v in gt_c.values())))
    return float(np.mean(aps))


def seg(label, start, end, score) -> Segment:
    return Segment(label, start, end, score)


# ----------------------------------------------------------------------------- smoothing


@pytest.mark.parametrize("half_window", [1, 3, 10, 50])
def test_smoothing_matches_naive_loop(half_window):
    prob = np.random.default_rng(half_window).random((37, 4))
    np.testing.assert_allclose(smooth_probabilities(prob, half_window), naive_smoothing(prob, half_window))


def test_smoothing_by_hand():
    # h = 1: window [i - 1, i + 1) -> y[0] = x[0], y[i] = (x[i-1] + x[i]) / 2
    x = np.array([[0.0], [2.0], [4.0], [10.0]])
    np.testing.assert_allclose(smooth_probabilities(x, 1), [[0.0], [1.0], [3.0], [7.0]])
    # h = 2, T = 4: windows [0,2) [0,3) [0,4) [1,4) -> 1, 2, 4, 16/3
    np.testing.assert_allclose(smooth_probabilities(x, 2), [[1.0], [2.0], [4.0], [16 / 3]])


def test_smoothing_edge_cases():
    x = np.random.default_rng(0).random((5, 3))
    np.testing.assert_array_equal(smooth_probabilities(x, 0), x)
    assert smooth_probabilities(np.zeros((0, 3))).shape == (0, 3)
    with pytest.raises(Pcm3Error, match=r"\(T, K\)"):
        smooth_probabilities(np.zeros(5))
    with pytest.raises(Pcm3Error, match="half_window"):
        smooth_probabilities(x, -1)


# ----------------------------------------------------------------------------- proposals


def hand_probabilities() -> np.ndarray:
    """(12, 3), column 0 = background."""
    p = np.zeros((12, 3))
    p[:, 0] = 1.0  # frames 0-1 and 11: background only (activity 0)
    p[2:5] = [0.2, 0.7, 0.1]  # activity 0.8
    p[5] = [0.6, 0.1, 0.3]  # activity exactly 0.4 -> active at the default threshold
    p[6:8] = [0.9, 0.05, 0.05]  # activity 0.1
    p[8:11] = [0.1, 0.2, 0.7]  # activity 0.9
    return p


def test_propose_two_runs_by_hand():
    segs = propose_segments(hand_probabilities())
    # run 1 = frames [2, 6): class means (3*0.7 + 0.1)/4 = 0.55, (3*0.1 + 0.3)/4 = 0.15 -> label 0
    # run 2 = frames [8, 11): class means 0.2, 0.7 -> label 1, score 0.7
    assert [(s.label, s.start, s.end) for s in segs] == [(0, 2, 6), (1, 8, 11)]
    np.testing.assert_allclose([s.score for s in segs], [0.55, 0.7])
    assert all(isinstance(v, int) for s in segs for v in s[:3])


def test_propose_threshold_edge_and_min_length():
    # just above 0.4, frame 5 (activity 0.4) drops out: run 1 = [2, 5), score 0.7
    segs = propose_segments(hand_probabilities(), activity_threshold=0.41)
    assert [(s.label, s.start, s.end) for s in segs] == [(0, 2, 5), (1, 8, 11)]
    np.testing.assert_allclose(segs[0].score, 0.7)
    # min_length 4 keeps run 1 (4 frames) and drops run 2 (3 frames)
    segs = propose_segments(hand_probabilities(), min_length=4)
    assert [(s.start, s.end) for s in segs] == [(2, 6)]


def test_propose_class_is_argmax_of_means_not_majority():
    # per-frame argmax says class 0 twice, but the means are 0.4 / 0.6 -> class 1, score 0.6
    p = np.array([[0.0, 0.6, 0.4], [0.0, 0.6, 0.4], [0.0, 0.0, 1.0]])
    (s,) = propose_segments(p)
    assert (s.label, s.start, s.end) == (1, 0, 3)  # a run touching both sequence ends
    np.testing.assert_allclose(s.score, 0.6)


def test_propose_empty_and_background():
    assert propose_segments(np.zeros((0, 4))) == []
    background = np.zeros((20, 4))
    background[:, 0] = 1.0
    assert propose_segments(background) == []
    with pytest.raises(Pcm3Error, match="column 0 = background"):
        propose_segments(np.ones((5, 1)))


# ----------------------------------------------------------------------------- IoU and AP


def test_temporal_iou_by_hand():
    assert temporal_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert temporal_iou((0, 10), (2, 4)) == pytest.approx(0.2)
    assert temporal_iou((0, 10), (0, 10)) == 1.0
    assert temporal_iou((0, 10), (10, 20)) == 0.0  # touching, end exclusive
    assert temporal_iou((0, 10), (30, 40)) == 0.0
    np.testing.assert_allclose(
        temporal_iou(np.array([0, 10]), np.array([[5, 15], [0, 5], [20, 30]])), [1 / 3, 0.5, 0.0]
    )


def test_temporal_iou_equals_official_with_inclusive_end_minus_one():
    rng = np.random.default_rng(1)
    for _ in range(200):
        a0, b0 = rng.integers(0, 30, 2)
        a1, b1 = a0 + rng.integers(1, 20), b0 + rng.integers(1, 20)
        expected = official_iou_inclusive((a0, a1 - 1), (b0, b1 - 1))
        assert temporal_iou((a0, a1), (b0, b1)) == pytest.approx(expected)


def test_average_precision_by_hand():
    # ranked TP, FP, TP with 2 GT: precision 1, 1/2, 2/3; recall 1/2, 1/2, 1
    # envelope at the recall steps: 1 and 2/3 -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    assert average_precision_voc([1, 0, 1], [0.9, 0.8, 0.7], 2) == pytest.approx(5 / 6)
    # same detections given unsorted
    assert average_precision_voc([1, 1, 0], [0.7, 0.9, 0.8], 2) == pytest.approx(5 / 6)
    # ties keep input order: FP then TP -> precision 1/2 at recall 1; TP then FP -> 1
    assert average_precision_voc([0, 1], [0.5, 0.5], 1) == pytest.approx(0.5)
    assert average_precision_voc([1, 0], [0.5, 0.5], 1) == pytest.approx(1.0)
    assert average_precision_voc([], [], 3) == 0.0
    # long tied runs (where an unstable sort does reorder): 20 FP at 0.5, then at 0.7 ten TP before
    # ten FP -> ranked 10 TP first -> recall 1 at precision 1 -> AP 1
    conf = [0.5] * 20 + [0.7] * 20
    tp = [0] * 20 + [1] * 10 + [0] * 10
    assert average_precision_voc(tp, conf, 10) == 1.0


def test_average_precision_matches_loop_reference():
    rng = np.random.default_rng(2)
    for n in [1, 5, 30]:
        tp, conf = rng.random(n) < 0.5, rng.random(n)
        num_gt = int(tp.sum()) + int(rng.integers(1, 4))
        ranked = tp[np.argsort(-conf)].tolist()
        assert average_precision_voc(tp, conf, num_gt) == pytest.approx(loop_voc_ap(ranked, num_gt))


def test_average_precision_bad_input():
    with pytest.raises(Pcm3Error, match="num_gt"):
        average_precision_voc([1], [0.5], 0)
    with pytest.raises(Pcm3Error, match="must match"):
        average_precision_voc([1, 0], [0.5], 2)


# ----------------------------------------------------------------------------- mAP


def test_map_perfect_detections():
    gt = {"a": np.array([[0, 10, 20], [1, 30, 50]])}
    preds = {"a": [seg(0, 10, 20, 0.9), seg(1, 30, 50, 0.8)]}
    out = detection_map(preds, gt, num_classes=3)
    assert out["mAP@0.1"] == out["mAP@0.3"] == out["mAP@0.5"] == 1.0
    assert out["per_class_ap@0.5"] == {0: 1.0, 1: 1.0}
    assert out["num_classes_in_gt"] == 2


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (4, 14, (1.0, 1.0, 0.0)),  # overlap 6, union 14 -> IoU 0.43: hit at 0.1, 0.3; miss at 0.5
        (0, 5, (1.0, 1.0, 1.0)),  # IoU exactly 0.5 -> hit (threshold inclusive)
        (6, 16, (1.0, 0.0, 0.0)),  # overlap 4, union 16 -> 0.25
        (9, 30, (0.0, 0.0, 0.0)),  # overlap 1, union 30 -> 0.03
        (10, 20, (0.0, 0.0, 0.0)),  # touching -> 0
    ],
)
def test_map_shifted_detection(start, end, expected):
    out = detection_map({"a": [seg(0, start, end, 0.9)]}, {"a": np.array([[0, 0, 10]])}, num_classes=1)
    assert (out["mAP@0.1"], out["mAP@0.3"], out["mAP@0.5"]) == expected


def test_map_missed_ground_truth():
    gt = {"a": np.array([[0, 0, 10], [0, 20, 30], [0, 40, 50]])}
    # one hit of three, an FP ranked below it: recall 1/3 at precision 1 -> AP 1/3
    out = detection_map({"a": [seg(0, 0, 10, 0.9), seg(0, 60, 70, 0.5)]}, gt, num_classes=1)
    assert out["mAP@0.5"] == pytest.approx(1 / 3)
    # the FP ranked above the hit: recall 1/3 at precision 1/2 -> AP 1/6
    out = detection_map({"a": [seg(0, 0, 10, 0.9), seg(0, 60, 70, 0.95)]}, gt, num_classes=1)
    assert out["mAP@0.5"] == pytest.approx(1 / 6)


def test_map_duplicate_detection_is_false_positive():
    gt = {"a": np.array([[0, 0, 10], [0, 20, 30]])}
    # ranked: [0,10) TP, [1,10) duplicate of the matched GT (IoU 0.9) -> FP, [20,30) TP
    # precision 1, 1/2, 2/3; recall 1/2, 1/2, 1 -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    preds = {"a": [seg(0, 0, 10, 0.9), seg(0, 1, 10, 0.8), seg(0, 20, 30, 0.7)]}
    assert detection_map(preds, gt, num_classes=1)["mAP@0.5"] == pytest.approx(5 / 6)


def test_map_wrong_class():
    gt = {"a": np.array([[0, 0, 10], [1, 20, 30]])}
    # class 1 on class 0's interval: FP for class 1 (ranked first), class 0 never detected (AP 0);
    # class 1: FP then TP -> precision 1/2 at recall 1 -> AP 1/2; mAP = (0 + 1/2) / 2
    preds = {"a": [seg(1, 0, 10, 0.9), seg(1, 20, 30, 0.6)]}
    out = detection_map(preds, gt, num_classes=2)
    assert out["per_class_ap@0.5"] == pytest.approx({0: 0.0, 1: 0.5})
    assert out["mAP@0.5"] == pytest.approx(0.25)


def test_map_two_sequences_interleaved():
    gt = {"a": np.array([[0, 0, 10], [0, 20, 30]]), "b": np.array([[0, 5, 15]])}
    preds = {
        "a": [seg(0, 0, 10, 0.9), seg(0, 100, 110, 0.6), seg(0, 20, 30, 0.5)],
        # [20, 30) is a's interval but lies in sequence b -> FP
        "b": [seg(0, 20, 30, 0.8), seg(0, 5, 15, 0.7)],
    }
    # ranked: a TP .9, b FP .8, b TP .7, a FP .6, a TP .5 (3 GT)
    # precision 1, 1/2, 2/3, 1/2, 3/5; recall 1/3, 1/3, 2/3, 2/3, 1
    # envelope at recall steps: 1, 2/3, 3/5 -> AP = (1 + 2/3 + 3/5) / 3 = 34/45
    out = detection_map(preds, gt, num_classes=1)
    assert out["mAP@0.5"] == pytest.approx(34 / 45)
    swapped = detection_map({"b": preds["b"], "a": preds["a"]}, gt, num_classes=1)
    assert swapped["mAP@0.5"] == out["mAP@0.5"]


def test_map_ignores_classes_only_in_predictions_and_sequences_without_gt_are_fp():
    gt = {"a": np.array([[0, 0, 10]]), "c": np.zeros((0, 3))}
    preds = {"a": [seg(0, 0, 10, 0.5), seg(2, 30, 40, 0.99)]}
    out = detection_map(preds, gt, num_classes=3)
    assert out["mAP@0.5"] == 1.0 and out["num_classes_in_gt"] == 1
    assert out["per_class_ap@0.5"] == {0: 1.0}
    # a class-0 detection in a sequence with no ground truth (ranked first) -> FP -> AP 1/2
    out = detection_map({**preds, "z": [seg(0, 0, 10, 0.9)]}, gt, num_classes=3)
    assert out["mAP@0.5"] == pytest.approx(0.5)


def test_map_matching_variants():
    gt = {"a": np.array([[0, 0, 10], [0, 8, 20]])}
    # det 1 [0,10): IoU 1 with GT 1 -> TP. det 2 [2,12): IoU 8/12 with GT 1 (taken), 4/18 with GT 2.
    # at 0.1: best_unmatched takes GT 2 -> TP, AP 1; voc picks GT 1, already matched -> FP, AP 1/2
    preds = {"a": [seg(0, 0, 10, 0.9), seg(0, 2, 12, 0.8)]}
    assert detection_map(preds, gt, 1, iou_thresholds=(0.1,))["mAP@0.1"] == 1.0
    voc = detection_map(preds, gt, 1, iou_thresholds=(0.1,), matching="voc")
    assert voc["mAP@0.1"] == pytest.approx(0.5)
    with pytest.raises(Pcm3Error, match="matching"):
        detection_map(preds, gt, 1, matching="greedy")


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5])
def test_map_matches_loop_reference(threshold):
    rng = np.random.default_rng(int(threshold * 10))
    gts, preds = {}, {}
    for seq in range(4):
        starts = rng.integers(0, 200, 5)
        gts[seq] = np.stack([rng.integers(0, 3, 5), starts, starts + rng.integers(5, 40, 5)], axis=1)
        p_starts = rng.integers(0, 200, 8)
        preds[seq] = [
            seg(int(c), int(s), int(s + d), float(rng.random()))
            for c, s, d in zip(rng.integers(0, 3, 8), p_starts, rng.integers(5, 40, 8), strict=True)
        ]
    out = detection_map(preds, gts, num_classes=3, iou_thresholds=(threshold,))
    assert out[f"mAP@{threshold:g}"] == pytest.approx(loop_detection_map(preds, gts, threshold))


def test_map_bad_input_names_the_sequence():
    with pytest.raises(DataError, match=r"'s1'.*label in \[0, 2\)"):
        detection_map({}, {"s1": np.array([[5, 0, 10]])}, num_classes=2)
    with pytest.raises(DataError, match=r"'s1'.*end > start"):
        detection_map({}, {"s1": np.array([[0, 10, 10]])}, num_classes=2)
    with pytest.raises(DataError, match=r"'s2'.*prediction label 7"):
        detection_map({"s2": [seg(7, 0, 5, 0.5)]}, {"s1": np.array([[0, 0, 10]])}, num_classes=2)


def test_map_empty_ground_truth():
    out = detection_map({"a": [seg(0, 0, 5, 0.5)]}, {"a": np.zeros((0, 3))}, num_classes=2)
    assert out["mAP@0.5"] == 0.0 and out["num_classes_in_gt"] == 0


# ----------------------------------------------------------------------------- frame labels


def test_frame_labels_by_hand():
    # [2, 1, 4) then [0, 3, 6): frame 3 is covered by both, the later row wins
    labels = frame_labels_from_intervals(np.array([[2, 1, 4], [0, 3, 6]]), 8)
    np.testing.assert_array_equal(labels, [-1, 2, 2, 0, 0, 0, -1, -1])
    np.testing.assert_array_equal(
        frame_labels_from_intervals(np.array([[1, 6, 20]]), 8, background=9), [9, 9, 9, 9, 9, 9, 1, 1]
    )  # clipped to T
    np.testing.assert_array_equal(frame_labels_from_intervals(np.zeros((0, 3)), 3), [-1, -1, -1])
    with pytest.raises(Pcm3Error, match=r"\(G, 3\)"):
        frame_labels_from_intervals(np.array([1, 2]), 3)


def test_pipeline_from_clean_probabilities_is_perfect():
    # one-hot per-frame probabilities built from the ground truth -> proposals reproduce it -> mAP 1
    intervals = np.array([[1, 5, 20], [0, 30, 45], [2, 60, 61]])
    labels = frame_labels_from_intervals(intervals, 70)
    prob = np.eye(4)[labels + 1]  # column 0 = background
    segs = propose_segments(prob)
    assert [(s.label, s.start, s.end, s.score) for s in segs] == [
        (1, 5, 20, 1.0),
        (0, 30, 45, 1.0),
        (2, 60, 61, 1.0),
    ]
    out = detection_map({"v": segs}, {"v": intervals}, num_classes=3)
    assert out["mAP@0.5"] == 1.0 and out["num_classes_in_gt"] == 3
