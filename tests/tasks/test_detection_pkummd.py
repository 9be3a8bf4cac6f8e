"""PKU-MMD's own detection metric on hand-computed cases, and where it differs from the per-class
VOC AP of ``detection_map``."""

from __future__ import annotations

import numpy as np
import pytest

from pcm3.errors import DataError, Pcm3Error
from pcm3.tasks.detection_metrics import Segment, detection_map
from pcm3.tasks.detection_pkummd import (
    TWO_D_THRESHOLDS,
    match_proposals,
    pkummd_average_precision,
    pkummd_metrics,
)


def test_unmatched_drop_does_not_recompute_precision():
    # ground truth g0 [0,10), g1 [20,30); proposals P1 hits g0 (0.9), P2 hits nothing (0.8), P3 hits g1 (0.7).
    # All kept: precision 2/3, recall 1.  Drop P3: precision 1/2, recall 1/2; running max 2/3
    # -> AP += 2/3 * 1/2.  Drop P2: hits nothing, nothing recomputed.  Drop P1: recall 0
    # -> AP += 2/3 * 1/2.  AP = 2/3 (VOC: precision 1 at recall 1/2, 2/3 at 1 -> 5/6).
    truth = [("v", 0, 0, 10), ("v", 0, 20, 30)]
    proposals = [("v", 0, 0, 10, 0.9), ("v", 0, 40, 50, 0.8), ("v", 0, 20, 30, 0.7)]
    assert match_proposals(proposals, truth, 0.5).tolist() == [0, -1, 1]
    assert pkummd_average_precision(proposals, truth, 0.5) == pytest.approx(2 / 3)
    voc = detection_map({"v": [Segment(0, s, e, c) for _, _, s, e, c in proposals]},
                        {"v": np.array([[0, 0, 10], [0, 20, 30]])}, 1, [0.5])
    assert voc["mAP@0.5"] == pytest.approx(5 / 6)


def test_no_one_to_one_matching():
    # g0 [0,10), g1 [5,15). P [5,12): IoU 5/12 with g0, 7/10 with g1. Q [4,14): 6/14 and 9/11.
    # At 0.3 both hit g1 (their best), so g0 is never covered: all kept -> precision 1/2,
    # recall 1/2; drop Q -> precision 1, recall 1/2; drop P -> recall 0: AP = 1 * 1/2.
    truth = [("v", 0, 0, 10), ("v", 0, 5, 15)]
    proposals = [("v", 0, 5, 12, 0.9), ("v", 0, 4, 14, 0.8)]
    assert match_proposals(proposals, truth, 0.3).tolist() == [1, 1]
    assert pkummd_average_precision(proposals, truth, 0.3) == pytest.approx(0.5)
    preds = {"v": [Segment(0, 5, 12, 0.9), Segment(0, 4, 14, 0.8)]}
    gt = {"v": np.array([[0, 0, 10], [0, 5, 15]])}
    assert detection_map(preds, gt, 1, [0.3])["mAP@0.3"] == pytest.approx(1.0)  # Q takes g0
    assert detection_map(preds, gt, 1, [0.3], matching="voc")["mAP@0.3"] == pytest.approx(0.5)


def test_ties_go_to_the_interval_listed_last_and_below_threshold_is_no_hit():
    truth = [("v", 0, 0, 10), ("v", 0, 0, 10), ("v", 1, 0, 10), ("w", 0, 0, 10)]
    proposals = [("v", 0, 0, 10, 0.5), ("v", 0, 0, 4, 0.5)]  # the second: IoU 0.4
    assert match_proposals(proposals, truth, 0.5).tolist() == [1, -1]
    assert match_proposals(proposals, truth, 0.4).tolist() == [1, 1]


def test_all_class_slots_recordings_and_2dap_by_hand():
    # K = 4. Recording a: class 0 [0,10) and class 1 [20,30), both found exactly (0.9, 0.8).
    # Recording b: class 0 [0,10), nothing found.
    preds = {"a": [Segment(0, 0, 10, 0.9), Segment(1, 20, 30, 0.8)], "b": []}
    gt = {"a": np.array([[0, 0, 10], [1, 20, 30]]), "b": np.array([[0, 0, 10]])}
    out = pkummd_metrics(preds, gt, 4, [0.5])
    # class 0: one of two intervals, precision 1 -> AP 1/2; class 1: AP 1; classes 2, 3: 0
    assert out["per_class_ap@0.5"] == pytest.approx({0: 0.5, 1: 1.0, 2: 0.0, 3: 0.0})
    assert out["mAP_action@0.5"] == pytest.approx(1.5 / 4)
    assert out["mAP_video@0.5"] == pytest.approx((1.0 + 0.0) / 2)
    # pooled: precision 1 at recall 2/3 and 1/3 -> AP 2/3 at every threshold (the IoUs are 1)
    assert out["2DAP"] == pytest.approx(2 / 3)
    # the VOC mAP averages over the 2 classes in the ground truth only
    assert detection_map(preds, gt, 4, [0.5])["mAP@0.5"] == pytest.approx(0.75)


def test_2dap_counts_the_thresholds_an_iou_passes():
    # IoU of [0,18) with [0,25) is 0.72: passes 0.05 ... 0.70 (14 of 20 thresholds)
    assert len(TWO_D_THRESHOLDS) == 20 and TWO_D_THRESHOLDS[-1] == 1.0
    out = pkummd_metrics({0: [Segment(0, 0, 18, 0.3)]}, {0: np.array([[0, 0, 25]])}, 1, [0.7, 0.75])
    assert out["2DAP"] == pytest.approx(14 / 20)
    assert (out["mAP_action@0.7"], out["mAP_action@0.75"]) == (1.0, 0.0)


def test_ignored_classes_leave_every_average():
    preds = {0: [Segment(0, 0, 10, 0.9), Segment(2, 20, 30, 0.8)]}
    gt = {0: np.array([[0, 0, 10], [1, 40, 50]])}
    full = pkummd_metrics(preds, gt, 3, [0.5])
    part = pkummd_metrics(preds, gt, 3, [0.5], ignored_classes=[1, 2])
    assert full["mAP_action@0.5"] == pytest.approx(1 / 3)  # class 0: 1, class 1 missed, class 2: no truth
    assert part["mAP_action@0.5"] == pytest.approx(1.0) and list(part["per_class_ap@0.5"]) == [0]
    # video: all kept -> precision 1/2, recall 1/2; dropping the class-2 miss recomputes nothing;
    # dropping the hit -> recall 0: AP = 1/2 * 1/2. Without classes 1 and 2: AP 1.
    assert full["mAP_video@0.5"] == pytest.approx(0.25) and part["mAP_video@0.5"] == pytest.approx(1.0)


def test_empty_cases_and_errors():
    assert pkummd_average_precision([], [("v", 0, 0, 10)], 0.5) == 0.0
    assert pkummd_average_precision([("v", 0, 0, 10, 1.0)], [], 0.5) == 0.0
    with pytest.raises(Pcm3Error, match=r"threshold must be in \(0, 1\]"):
        match_proposals([], [], 0.0)
    with pytest.raises(DataError, match="outside"):
        pkummd_metrics({0: [Segment(3, 0, 5, 1.0)]}, {0: np.zeros((0, 3))}, 3)
    with pytest.raises(DataError, match="end > start"):
        pkummd_metrics({}, {0: np.array([[0, 5, 5]])}, 3)
    with pytest.raises(Pcm3Error, match="at least one class slot"):
        pkummd_metrics({}, {0: np.zeros((0, 3))}, 2, ignored_classes=[0, 1])
