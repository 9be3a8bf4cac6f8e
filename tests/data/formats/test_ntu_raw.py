"""Reader ``ntu-raw``: hand-written files against a slow reference, error cases, real samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pcm3.data.formats import ReadOptions, read
from pcm3.data.formats.ntu_raw import (
    NTU_ACTION_NAMES,
    XSUB_TRAIN_SUBJECTS,
    read_skeleton_file,
)
from pcm3.errors import ConfigError, DataError

from ...real_data import real_data

# README table: name -> (frames, persons)
REAL = {
    "S001C001P001R001A001": (103, 1), "S001C001P001R001A050": (74, 2),
    "S017C003P020R002A054": (42, 2), "S017C003P020R002A055": (66, 2),
    "S017C003P020R002A056": (80, 2), "S017C003P020R002A057": (76, 2),
    "S017C003P020R002A058": (65, 2), "S001C001P001R001A011": (82, 1),
    "S001C003P008R002A058": (70, 2), "S002C001P003R001A003": (100, 1),
    "S003C001P015R001A034": (71, 1), "S004C002P003R001A017": (124, 1),
}  # fmt: skip


@pytest.fixture(scope="module")
def real_dir() -> Path:
    return real_data("ntu_rgbd_samples", "skeletons")


def skeleton_text(frames: list[list[tuple[str, np.ndarray]]], newline: str = "\n") -> str:
    """The .skeleton text of ``frames``: per frame a list of (body ID, joints (25, 3))."""
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for body_id, joints in bodies:
            out += [f"{body_id} 0 1 1 1 1 0 0.01 0.02 2", "25"]
            out += [f"{x:.6f} {y:.6f} {z:.6f} 1 2 3 4 0 0 0 1 2" for x, y, z in joints]
    return newline.join(out) + newline


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.skeleton"
    path.write_bytes(text.encode())
    return path


def reference_bodies(path: Path) -> dict[str, dict[int, np.ndarray]]:
    """Slow obviously-correct parse: body ID -> {frame: (25, 3)}."""
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    out: dict[str, dict[int, np.ndarray]] = {}
    i = 1
    for frame in range(int(lines[0])):
        n_bodies = int(lines[i])
        i += 1
        for _ in range(n_bodies):
            body_id = lines[i].split()[0]
            joints = [[float(v) for v in lines[i + 2 + j].split()[:3]] for j in range(25)]
            out.setdefault(body_id, {})[frame] = np.array(joints)
            i += 27
    return out


def joints(seed: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(25, 3)) * scale + 1.0


def test_tracks_bodies_by_id_across_frames(tmp_path: Path) -> None:
    a = [joints(i, 1.0) for i in range(6)]
    b = [joints(10 + i, 0.5) for i in range(6)]
    frames = [[("7", a[0])], [], [("9", b[2]), ("7", a[2])], [("9", b[3])], [("7", a[4])]]
    path = write(tmp_path, "S001C001P001R001A001", skeleton_text(frames))
    bodies = read_skeleton_file(path)
    expected = np.zeros((2, 5, 25, 3), dtype=np.float32)
    expected[0, 0], expected[0, 2], expected[0, 4] = a[0], a[2], a[4]
    expected[1, 2], expected[1, 3] = b[2], b[3]
    np.testing.assert_allclose(bodies, expected, atol=1e-6)


def test_keeps_most_moving_bodies_up_to_max(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    moves = {"1": 0.01, "2": 1.0, "3": 0.3}  # body "2" moves most, then "3"
    frames = [[(k, rng.normal(size=(25, 3)) * s + 2) for k, s in moves.items()] for _ in range(8)]
    write(tmp_path, "S001C001P001R001A001", skeleton_text(frames))
    raw = read_skeleton_file(tmp_path / "S001C001P001R001A001.skeleton")
    for keep, order in [(1, [1]), (2, [1, 2]), (4, [1, 2, 0])]:
        x = read(tmp_path, "ntu-raw", ReadOptions(max_bodies=keep)).samples[0].x
        assert x.shape == (3, 8, 25, keep) and x.dtype == np.float32
        for m, body in enumerate(order):
            np.testing.assert_array_equal(x[..., m], raw[body].transpose(2, 0, 1))
        assert not x[..., len(order) :].any()


def test_matches_slow_reference_on_real_files(real_dir: Path) -> None:
    for path in sorted(real_dir.glob("*.skeleton")):
        bodies = read_skeleton_file(path)
        ref = reference_bodies(path)
        assert bodies.shape[0] == len(ref)
        for b, frames in enumerate(ref.values()):  # dicts keep first-appearance order
            for frame in range(bodies.shape[1]):
                want = frames.get(frame, np.zeros((25, 3)))
                np.testing.assert_allclose(bodies[b, frame], want, rtol=1e-6, atol=1e-7)


def test_real_samples_frames_persons_labels_and_splits(real_dir: Path) -> None:
    converted = read(real_dir, "ntu-raw")
    by_id = {s.id: s for s in converted.samples}
    assert set(by_id) == set(REAL)
    for name, (frames, persons) in REAL.items():
        x = by_id[name].x
        assert x.shape == (3, frames, 25, 2) and x.dtype == np.float32
        present = [bool(x[..., m].any()) for m in range(2)]
        assert present == [True] * persons + [False] * (2 - persons)
        assert by_id[name].label == int(name[-3:]) - 1
    assert converted.source["variant"] == "ntu60" and len(converted.class_names) == 60
    assert converted.class_names[0] == "drink water"
    train_cams = {n for n in REAL if n[4:8] in ("C002", "C003")}
    assert set(converted.splits["xview/train"]) == train_cams
    assert set(converted.splits["xview/val"]) == {n for n in REAL if n[4:8] == "C001"}
    subjects = {n for n in REAL if int(n[9:12]) in XSUB_TRAIN_SUBJECTS[:20]}
    assert set(converted.splits["xsub/train"]) == subjects
    assert set(converted.splits["xsub/val"]) == set(REAL) - subjects
    assert "xset/train" not in converted.splits


def test_crlf_and_lf_parse_identically(real_dir: Path, tmp_path: Path) -> None:
    crlf = real_dir / "S001C001P001R001A011.skeleton"
    assert b"\r\n" in crlf.read_bytes()
    lf = tmp_path / crlf.name
    lf.write_bytes(crlf.read_bytes().replace(b"\r\n", b"\n"))
    np.testing.assert_array_equal(read_skeleton_file(crlf), read_skeleton_file(lf))


def test_missing_list_drops_listed_samples(real_dir: Path, tmp_path: Path) -> None:
    listing = real_dir.parent / "NTU_RGBD_samples_with_missing_skeletons.txt"
    listed = listing.read_text().split()[-1]  # last line is a sample name
    shutil.copy(real_dir / "S001C001P001R001A001.skeleton", tmp_path / f"{listed}.skeleton")
    shutil.copy(real_dir / "S001C001P001R001A050.skeleton", tmp_path)
    converted = read(tmp_path, "ntu-raw", ReadOptions(missing_list=(listing,)))
    assert [s.id for s in converted.samples] == ["S001C001P001R001A050"]
    assert converted.source["dropped_missing"] == 1


def test_zero_body_frames_are_zero_and_all_empty_is_an_error(tmp_path: Path) -> None:
    frames = [[], [("5", joints(1))], []]
    write(tmp_path / "a", "S001C001P001R001A001", skeleton_text(frames))
    x = read(tmp_path / "a", "ntu-raw").samples[0].x
    assert x.shape == (3, 3, 25, 2)
    assert [bool(x[:, t].any()) for t in range(3)] == [False, True, False]
    write(tmp_path / "b", "S001C001P001R001A001", skeleton_text([[], []]))
    with pytest.raises(DataError, match="no body"):
        read(tmp_path / "b", "ntu-raw")


def test_splits_ntu120_and_ntu60_subjects(tmp_path: Path) -> None:
    text = skeleton_text([[("1", joints(0))], [("1", joints(1))]])
    subject_21 = XSUB_TRAIN_SUBJECTS[20]  # training in NTU-120 only
    names = [f"S001C001P{subject_21:03d}R001A001", "S001C002P003R001A002"]
    for name in names:
        write(tmp_path / "ntu60", name, text)
    c60 = read(tmp_path / "ntu60", "ntu-raw")
    assert c60.splits["xsub/val"] == names and c60.splits["xsub/train"] == []
    assert c60.splits["xview/train"] == [names[1]] and c60.splits["xview/val"] == [names[0]]
    names120 = [*names, "S018C001P001R001A061", "S019C001P003R001A120"]
    for name in names120[2:]:
        write(tmp_path / "ntu60", name, text)
    c120 = read(tmp_path / "ntu60", "ntu-raw")
    assert c120.source["variant"] == "ntu120" and "xview/train" not in c120.splits
    assert c120.class_names == list(NTU_ACTION_NAMES) and len(NTU_ACTION_NAMES) == 120
    assert set(c120.splits["xsub/train"]) == {names120[0], names120[2]}
    assert set(c120.splits["xset/train"]) == {names120[2]}
    assert {s.id: s.label for s in c120.samples}[names120[3]] == 119


GOOD = skeleton_text([[("1", joints(0))], [("1", joints(1)), ("2", joints(2))]])
JOINT_LINE = GOOD.splitlines()[4]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("", "empty file", None),
        (GOOD.replace("2\n", "3\n", 1), "truncated", None),  # frame count 2 -> 3
        (GOOD.replace("2\n", "1\n", 1), "frame count mismatch", 30),
        (GOOD[: len(GOOD) // 2], "truncated", None),  # cut inside a joint line
        (GOOD.replace(JOINT_LINE, JOINT_LINE.replace("1 2 3", "1 x 3")), "'x' is not a number", 5),
        (GOOD.replace(JOINT_LINE, JOINT_LINE.replace("1 2 3", "1 2")), "expected 12", 5),
        (GOOD.replace(JOINT_LINE, "nan" + JOINT_LINE[JOINT_LINE.index(" ") :]), "NaN", 5),
        (GOOD.replace("\n25\n", "\n24\n", 1), "joint count 24, expected 25", 4),
        (GOOD.replace("\n1\n", "\n1.5\n", 1), "integer", 2),
    ],
)
def test_bad_files_raise_data_error(tmp_path: Path, text: str, message: str, line: int | None):
    path = write(tmp_path, "S001C001P001R001A001", text)
    with pytest.raises(DataError, match=message) as info:
        read(tmp_path, "ntu-raw")
    assert info.value.path == str(path)
    if line is not None:
        assert info.value.line == line


def test_bad_name_and_skip_bad(tmp_path: Path) -> None:
    write(tmp_path / "name", "not_an_ntu_name", GOOD)
    with pytest.raises(DataError, match="SsssCcccPpppRrrrAaaa") as info:
        read(tmp_path / "name", "ntu-raw")
    assert info.value.path.endswith("not_an_ntu_name.skeleton")
    mixed = tmp_path / "mixed"
    write(mixed, "S001C001P001R001A001", GOOD)
    write(mixed, "not_an_ntu_name", GOOD)
    write(mixed, "S001C001P001R001A002", GOOD.replace("25\n", "7\n", 1))
    converted = read(mixed, "ntu-raw", ReadOptions(skip_bad=True))
    assert converted.source["files"] == 3
    assert [s.id for s in converted.samples] == ["S001C001P001R001A001"]
    reasons = {Path(s.path).stem: s.reason for s in converted.skipped}
    assert set(reasons) == {"not_an_ntu_name", "S001C001P001R001A002"}
    assert "joint count 7" in reasons["S001C001P001R001A002"]


def test_same_sample_in_two_subfolders_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "part1", "S001C001P001R001A001", GOOD)
    write(tmp_path / "part2", "S018C001P001R001A001", GOOD)
    assert len(read(tmp_path, "ntu-raw").samples) == 2  # searched recursively
    write(tmp_path / "part2", "S001C001P001R001A001", GOOD)
    with pytest.raises(DataError, match="found twice"):
        read(tmp_path, "ntu-raw")


def test_not_a_folder_or_no_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no \.skeleton file"):
        read(tmp_path, "ntu-raw")
    with pytest.raises(DataError, match="folder"):
        read(tmp_path / "absent", "ntu-raw")


def test_option_values(tmp_path: Path) -> None:
    write(tmp_path, "S001C001P001R001A001", GOOD)
    write(tmp_path, "S001C001P001R001A002", GOOD)
    with pytest.raises(ConfigError, match="max_bodies"):
        read(tmp_path, "ntu-raw", ReadOptions(max_bodies=0))
    listing = tmp_path / "missing.txt"
    listing.write_text("some prose line\nS001C001P001R001A002\n")
    converted = read(tmp_path, "ntu-raw", ReadOptions(missing_list=listing))  # one path
    assert [s.id for s in converted.samples] == ["S001C001P001R001A001"]
    listing.write_text("no names here\n")
    with pytest.raises(DataError, match="no SsssCcccPpppRrrrAaaa"):
        read(tmp_path, "ntu-raw", ReadOptions(missing_list=(listing,)))
