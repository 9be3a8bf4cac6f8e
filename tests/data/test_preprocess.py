"""Vectorised pre-processing against slow transcriptions of the official per-frame loops."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pcm3.data.preprocess import (
    STEPS,
    align_view,
    center,
    describe,
    make_transform,
    repair_null_frames,
    select_bodies,
)
from pcm3.data.records import Converted, Sample
from pcm3.data.store import write_trimmed
from pcm3.errors import ConfigError, DataError
from pcm3.layouts import COCO17, KINECT_V1_20, NTU25, layout_from_dict

from ..real_data import real_data

TINY8 = layout_from_dict({
    "name": "tiny8",
    "joints": ["hip", "chest", "l_arm", "l_hand", "r_arm", "r_hand", "l_leg", "r_leg"],
    "parents": ["hip", "hip", "chest", "l_arm", "chest", "r_arm", "hip", "hip"],
    "parts": {"upper": ["chest", "l_arm", "l_hand", "r_arm", "r_hand"], "lower": [0, 6, 7]},
    "center": "hip", "up": ["hip", "chest"], "across": ["r_arm", "l_arm"],
})
LAYOUTS = [NTU25, KINECT_V1_20, TINY8]


def ref_repair(x, lengths):
    s = x.transpose(0, 4, 2, 3, 1).copy()  # (N, M, T, V, C)
    out = np.zeros_like(s)
    new_lengths = []
    for i, skeleton in enumerate(s):
        persons, ends = [], []
        for person in skeleton:
            person = person[: lengths[i]].copy()
            if person.any() and not person[0].any():
                tmp = person[[f.any() for f in person]].copy()
                person *= 0
                person[: len(tmp)] = tmp
            nonzero = [f for f in range(len(person)) if person[f].any()]
            persons.append(person)
            ends.append(nonzero[-1] + 1 if nonzero else 0)
        new_len = max(ends)
        for p, person in enumerate(persons):
            if ends[p] == 0:
                continue
            for i_f in range(new_len):
                if not person[i_f].any() and not person[i_f:new_len].any():
                    rest = new_len - i_f
                    num = math.ceil(rest / i_f)
                    person[i_f:new_len] = np.concatenate([person[:i_f]] * num, 0)[:rest]
                    break
            out[i, p, :new_len] = person[:new_len]
        new_lengths.append(new_len)
    return out.transpose(0, 4, 2, 3, 1), np.array(new_lengths)


def ref_center(x, joint):
    s = x.transpose(0, 4, 2, 3, 1).copy()
    for i in range(len(s)):
        origin = s[i, 0, :, joint].copy()
        for p in range(s.shape[1]):
            for f in range(s.shape[2]):
                for j in range(s.shape[3]):
                    if s[i, p, f, j].any():
                        s[i, p, f, j] -= origin[f]
    return s.transpose(0, 4, 2, 3, 1)


def ref_rotation_matrix(axis, theta):  # Euler-Rodrigues, as data_gen/rotation.py
    if np.abs(axis).sum() < 1e-6 or abs(theta) < 1e-6:
        return np.eye(3)
    axis = np.asarray(axis) / math.sqrt(np.dot(axis, axis))
    a = math.cos(theta / 2.0)
    b, c, d = -axis * math.sin(theta / 2.0)
    return np.array([
        [a * a + b * b - c * c - d * d, 2 * (b * c + a * d), 2 * (b * d - a * c)],
        [2 * (b * c - a * d), a * a + c * c - b * b - d * d, 2 * (c * d + a * b)],
        [2 * (b * d + a * c), 2 * (c * d - a * b), a * a + d * d - b * b - c * c],
    ])


def ref_angle(v1, v2):
    if np.abs(v1).sum() < 1e-6:
        return 0.0
    return np.arccos(np.clip(np.dot(v1 / np.linalg.norm(v1), v2), -1.0, 1.0))


def ref_align(x, up, across):
    s = x.transpose(0, 4, 2, 3, 1).astype(np.float64)
    for skeleton in s:
        for pair, target in ((up, np.array([0.0, 0, 1])), (across, np.array([1.0, 0, 0]))):
            if pair is None:
                continue
            first = next((f for f in skeleton[0] if f.any()), skeleton[0, 0])
            vec = first[pair[1]] - first[pair[0]]
            rot = ref_rotation_matrix(np.cross(vec, target), ref_angle(vec, target))
            for p in range(s.shape[1]):
                for f in range(s.shape[2]):
                    if skeleton[p, f].any():
                        for j in range(s.shape[3]):
                            skeleton[p, f, j] = rot @ skeleton[p, f, j]
    return s.transpose(0, 4, 2, 3, 1)


def ref_energy(body):  # ntu_gendata.py::get_nonzero_std
    body = body[body.any(axis=(1, 2))]
    return sum(body[:, :, c].std() for c in range(body.shape[2])) if len(body) else 0.0


def make_batch(v, c=3, t=16, seed=0):
    """Random skeletons with the zero patterns that matter, padded after ``lengths``."""
    rng = np.random.default_rng(seed)
    lengths = np.array([16, 14, 12, 16, 10, 13, 9])
    x = rng.normal(0, 0.3, (7, c, t, v, 2)) + rng.normal(0, 1, (7, c, 1, 1, 1))
    x[rng.random(x[:, :1].shape).repeat(c, 1) < 0.05] = 0  # scattered empty joints
    x[0, :, :3, :, 0] = 0  # leading empties, both persons
    x[0, :, :5, :, 1] = 0
    x[1, :, 8:, :, 1] = 0  # person 1 ends early
    x[2, :, :, :, 1] = 0  # absent person
    x[3, :, 6:8, :, 0] = 0  # interior empties after a valid first frame (kept)
    x[4, :, [0, 1, 5], :, 0] = 0  # leading + interior empties (all dropped)
    x[5, :, :, :, 0] = 0  # person 0 absent
    x[6, :, :4] = 0  # leading empties of the whole sample
    x *= (np.arange(t)[None, :] < lengths[:, None])[:, None, :, None, None]  # zero padding
    return x.astype(np.float32), lengths


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.name)
def test_steps_match_official_loops(layout):
    x, lengths = make_batch(layout.num_joints)
    before = x.copy()
    repaired, new_lengths = repair_null_frames(x, lengths)
    want, want_lengths = ref_repair(x, lengths)
    np.testing.assert_array_equal(new_lengths, want_lengths)
    np.testing.assert_array_equal(repaired, want)
    centred = center(repaired, new_lengths, layout.center)
    np.testing.assert_allclose(centred, ref_center(repaired, layout.center), atol=1e-6)
    aligned = align_view(centred, new_lengths, layout.up, layout.across)
    np.testing.assert_allclose(aligned, ref_align(centred, layout.up, layout.across), atol=1e-5)
    np.testing.assert_allclose(  # person 0 starts empty: its first non-empty frame is used
        align_view(x, lengths, layout.up, layout.across),
        ref_align(x, layout.up, layout.across), atol=1e-5,
    )
    for up, across in ((layout.up, None), (None, layout.across)):
        np.testing.assert_allclose(
            align_view(centred, new_lengths, up, across), ref_align(centred, up, across), atol=1e-5
        )
    full, full_lengths = make_transform(layout)(x, lengths)
    np.testing.assert_array_equal(full_lengths, want_lengths)
    np.testing.assert_allclose(full, aligned, atol=1e-6)
    np.testing.assert_array_equal(x, before)  # inputs untouched
    assert full.dtype == np.float32 and full_lengths.dtype == np.int64


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.name)
def test_alignment_puts_up_on_z_and_across_on_x(layout):
    x, lengths = make_batch(layout.num_joints, seed=1)
    x, lengths = repair_null_frames(x, lengths)
    keep = x[..., 0].any(axis=(1, 2, 3))  # samples whose person 0 exists
    first = np.argmax((x[..., 0] != 0).any(axis=(1, 3)), axis=1)
    (a, b), (c, d) = layout.up, layout.across
    up_only = align_view(x, lengths, layout.up, None)[np.arange(len(x)), :, first, :, 0]
    vec = (up_only[:, :, b] - up_only[:, :, a])[keep]
    np.testing.assert_allclose(vec[:, :2], 0, atol=1e-5)
    assert (vec[:, 2] > 0).all()
    both = align_view(x, lengths, layout.up, layout.across)
    ref = both[np.arange(len(x)), :, first, :, 0]
    vec = (ref[:, :, d] - ref[:, :, c])[keep]
    np.testing.assert_allclose(vec[:, 1:], 0, atol=1e-5)
    assert (vec[:, 0] > 0).all()
    np.testing.assert_allclose(  # a rotation: lengths of all joint vectors are preserved
        np.linalg.norm(both, axis=1), np.linalg.norm(x, axis=1), rtol=1e-5, atol=1e-6
    )
    assert ((both == 0).all(axis=1) == (x == 0).all(axis=1)).all()  # empty joints stay empty


def test_repair_drops_leading_empty_frames_and_keeps_padding_zero():
    rng = np.random.default_rng(2)
    x = np.zeros((2, 3, 12, 8, 2), np.float32)
    x[0, :, 4:10, :, 0] = rng.normal(size=(3, 6, 8))  # 4 leading empties, length 10
    x[1, :, :7, :, 0] = rng.normal(size=(3, 7, 8))  # person 0 ends at 7, person 1 at 9
    x[1, :, :9, :, 1] = rng.normal(size=(3, 9, 8))
    x[0, :, 10:] = 7.0  # not zero past the valid length: ignored
    out, lengths = repair_null_frames(x, np.array([10, 11]))
    assert lengths.tolist() == [6, 9]
    np.testing.assert_array_equal(out[0, :, :6], x[0, :, 4:10])
    np.testing.assert_array_equal(out[1, :, 7:9, :, 0], x[1, :, :2, :, 0])  # cyclic tail fill
    assert not out[0, :, 6:].any() and not out[1, :, 9:].any()
    full, _ = make_transform(TINY8)(x, np.array([10, 11]))
    assert not full[0, :, 6:].any() and not full[1, :, 9:].any()


def test_repair_rejects_an_empty_sample_and_bad_lengths():
    x = np.ones((3, 3, 5, 8, 2), np.float32)
    x[1, :, :3] = 0
    with pytest.raises(DataError, match="sample '1': all frames are empty"):
        repair_null_frames(x, np.array([5, 3, 5]))  # only the padding of sample 1 is non-zero
    with pytest.raises(DataError, match=r"lengths in 0\.\.5"):
        repair_null_frames(x, np.array([5, 6, 5]))


def test_center_zeroes_centre_joint_and_keeps_empty_joints():
    x, lengths = make_batch(TINY8.num_joints, seed=3)
    out = center(x, lengths, TINY8.center)
    has_centre = x[:, :, :, TINY8.center, 0].any(axis=1)
    assert not out[:, :, :, TINY8.center, 0].transpose(0, 2, 1)[has_centre].any()
    assert ((out == 0).all(axis=1) >= (x == 0).all(axis=1)).all()


def test_select_bodies_picks_the_most_moving():
    rng = np.random.default_rng(4)
    t, v = 20, 8
    bodies = np.zeros((5, t, v, 3), np.float32)
    for b, spread in enumerate([0.1, 1.0, 0.01, 0.5]):
        bodies[b, 2:] = rng.normal(5, spread, (t - 2, v, 3))
    bodies[2, 10:] = 0
    bodies[4, 7] = rng.normal(5, 0.3, (v, 3))  # one frame: its spread over joints counts
    np.testing.assert_array_equal(select_bodies(bodies, keep=2), bodies[[1, 3]])
    energies = np.array([ref_energy(b.astype(np.float64)) for b in bodies])
    want = bodies[np.argsort(-energies, kind="stable")]
    np.testing.assert_array_equal(select_bodies(bodies, keep=5), want)
    padded = select_bodies(bodies[:1], keep=3)  # fewer bodies than asked: zero bodies appended
    np.testing.assert_array_equal(padded[0], bodies[0])
    assert padded.shape == (3, t, v, 3) and not padded[1:].any()
    with pytest.raises(ConfigError, match="keep must be at least 1"):
        select_bodies(bodies, keep=0)
    for tie in ([bodies[0], bodies[3], -bodies[3]], [bodies[0], -bodies[3], bodies[3]]):
        tie = np.stack(tie)  # a mirrored body has bit-identical energy: ties keep input order
        np.testing.assert_array_equal(select_bodies(tie, keep=3), tie[[1, 2, 0]])


def test_select_bodies_energy_is_the_official_pooled_std():
    rng = np.random.default_rng(7)
    t, v = 30, 8
    x_only = np.full((t, v, 3), 5.0)  # std 1.7 in x only: pooled energy ~1.7
    x_only[..., 0] += rng.normal(0, 1.7, (t, v))
    iso = rng.normal(5, 0.7, (t, v, 3))  # std 0.7 per coordinate: ~2.1 (not sqrt(3) * 0.7)
    static = np.broadcast_to(rng.normal(5, 1.0, (1, v, 3)), (t, v, 3))  # no motion, wide: ~3
    rigid = 5 + rng.normal(0, 0.3, (t, 1, 3)) + np.zeros((t, v, 3))  # moves, no spread: ~0.9
    bodies = np.stack([x_only, iso, rigid, static]).astype(np.float32)
    np.testing.assert_array_equal(select_bodies(bodies, keep=4), bodies[[3, 1, 0, 2]])


def test_make_transform_skips_what_the_layout_or_data_cannot_do():
    assert describe(NTU25) == {
        "steps": list(STEPS), "layout": "ntu25", "center_joint": "spine_mid",
        "up": ["spine_base", "spine_mid"], "across": ["shoulder_left", "shoulder_right"],
        "skipped": {},
    }
    coco = describe(COCO17, ["center", "align", "repair"])
    assert coco["steps"] == ["repair", "align"]
    assert coco["across"] == ["left_shoulder", "right_shoulder"]
    assert set(coco["skipped"]) == {"center", "align.up"}
    flat = describe(TINY8, STEPS, channels=2)
    assert flat["steps"] == ["repair", "center"] and "C=3" in flat["skipped"]["align"]
    json.dumps(flat)  # goes into the store metadata
    with pytest.raises(ConfigError, match=r"'rotate'.*allowed: \['repair', 'center', 'align'\]"):
        make_transform(NTU25, ["repair", "rotate"])
    x, lengths = make_batch(TINY8.num_joints, c=2, seed=5)
    out, new_lengths = make_transform(TINY8)(x, lengths)  # 2D: repaired and centred only
    repaired, want_lengths = repair_null_frames(x, lengths)
    np.testing.assert_array_equal(new_lengths, want_lengths)
    np.testing.assert_allclose(out, center(repaired, want_lengths, TINY8.center), atol=1e-6)
    with pytest.raises(DataError, match="C=3"):
        align_view(x, lengths, TINY8.up, TINY8.across)


def test_write_trimmed_applies_the_transform_to_padded_chunks(tmp_path):
    x, lengths = make_batch(TINY8.num_joints, seed=6)
    samples = [Sample(f"s{i}", x[i, :, : lengths[i]], label=0) for i in range(len(x))]
    converted = Converted(layout=TINY8, class_names=["a"], samples=samples)
    transform, info = make_transform(TINY8), describe(TINY8)
    store = write_trimmed(tmp_path / "s", converted, transform=transform, preprocessing=info)
    want, want_lengths = transform(x, lengths)
    np.testing.assert_array_equal(store.lengths, want_lengths)
    np.testing.assert_allclose(np.asarray(store.x), want, atol=1e-6)
    assert store.meta["preprocessing"]["steps"] == list(STEPS)


def test_real_ntu_sample():
    path = real_data("ntu_rgbd_samples", "preprocessed", "paddlevideo_example_ntu_CTVM.npy")
    x = np.load(path)[None]  # (1, 3, 300, 25, 2)
    length = int((x != 0).any(axis=(1, 3, 4))[0].nonzero()[0][-1]) + 1
    out, lengths = make_transform(NTU25)(x, np.array([length]))
    assert out.shape == x.shape and np.isfinite(out).all() and lengths[0] == length == 72
    centre = out[0, :, : lengths[0], NTU25.center, 0]
    np.testing.assert_allclose(centre, 0, atol=1e-6)
    assert not out[0, :, lengths[0] :].any() and not out[..., 1].any()  # absent body stays zero
    (a, b), (c, d), first = NTU25.up, NTU25.across, out[0, :, 0, :, 0]  # (C, V)
    across = first[:, d] - first[:, c]
    assert across[0] > 0 and abs(across[1:]).max() < 1e-5 and first[2, b] > first[2, a]
