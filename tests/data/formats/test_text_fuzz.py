"""Fuzzing the text readers: a corrupted real file gives documented shapes or a DataError."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcm3.data.formats import ReadOptions, read
from pcm3.errors import DataError

from ...real_data import real_data

NTU_NAME = "S017C003P020R002A054.skeleton"
PKU_VIDEO, PKU_FRAMES = "0036-L", 400  # the first 400 frames of a real recording
GARBAGE = ["nan", "inf", "-inf", "", "x", "1e999", "--", "0x1", "2.5", "-3", "99999999999", "é"]
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip


@cache
def real_bytes() -> tuple[bytes, bytes, bytes]:
    """(NTU .skeleton file, first PKU_FRAMES skeleton lines, label lines inside them)."""
    ntu = real_data("ntu_rgbd_samples", "skeletons", NTU_NAME).read_bytes()
    pku = real_data("pku_mmd_part1")
    lines = (pku / "skeleton" / f"{PKU_VIDEO}.txt").read_bytes().splitlines(keepends=True)
    labels = (pku / "labels" / f"{PKU_VIDEO}.txt").read_bytes().splitlines(keepends=True)
    inside = [row for row in labels if int(row.split(b",")[2]) <= PKU_FRAMES]
    assert inside  # the fixture must exercise samples
    return ntu, b"".join(lines[:PKU_FRAMES]), b"".join(inside)


@st.composite
def corruption(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after one random corruption."""
    lines = data.splitlines(keepends=True)
    kind = draw(st.sampled_from(["truncate", "token", "delete", "duplicate", "count"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    i = draw(st.integers(0, len(lines) - 1))
    if kind == "delete":
        return b"".join(lines[:i] + lines[i + 1 :])
    if kind == "duplicate":
        return b"".join(lines[: i + 1] + lines[i:])
    if kind == "count":  # a line holding one integer (NTU counts) or any line: a new integer
        counts = [k for k, line in enumerate(lines) if len(line.split()) == 1] or [i]
        i = draw(st.sampled_from(counts))
        lines[i] = b"%d\n" % draw(st.integers(0, 60))
        return b"".join(lines)
    sep = b"," if b"," in lines[i] else None
    tokens = lines[i].rstrip(b"\r\n").split(sep)
    k = draw(st.integers(0, max(len(tokens) - 1, 0)))
    tokens[k] = draw(st.sampled_from(GARBAGE)).encode()
    lines[i] = (sep or b" ").join(tokens) + b"\n"
    return b"".join(lines)


def check_sample_shapes(samples, max_bodies: int) -> None:
    for s in samples:
        assert s.x.dtype == np.float32 and s.x.ndim == 4
        c, t, v, m = s.x.shape
        assert (c, v, m) == (3, 25, max_bodies) and t >= 1
        assert np.isfinite(s.x).all()


@FUZZ
@given(data=st.data())
def test_ntu_reader_corrupted(data: st.DataObject) -> None:
    ntu, _, _ = real_bytes()
    corrupted = data.draw(corruption(ntu))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / NTU_NAME).write_bytes(corrupted)
        try:
            converted = read(Path(tmp), "ntu-raw", ReadOptions())
        except DataError as exc:
            assert exc.path is not None and NTU_NAME in str(exc)
            return
    check_sample_shapes(converted.samples, 2)
    assert len(converted.samples) == 1 and converted.samples[0].label == 53


@FUZZ
@given(data=st.data(), target=st.sampled_from(["skeleton", "labels"]))
def test_pku_reader_corrupted(data: st.DataObject, target: str) -> None:
    _, skeleton, labels = real_bytes()
    files = {"skeleton": skeleton, "labels": labels}
    files[target] = data.draw(corruption(files[target]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for folder, content in files.items():
            (root / folder).mkdir()
            (root / folder / f"{PKU_VIDEO}.txt").write_bytes(content)
        (root / "splits").mkdir()
        for name in ("cross-subject.txt", "cross-view.txt"):
            (root / "splits" / name).write_text(f"Training videos:\n{PKU_VIDEO}\nValidation videos:\n\n")
        try:
            converted = read(root, "pku-mmd", ReadOptions())
        except DataError as exc:
            assert exc.path is not None and PKU_VIDEO in str(exc)
            return
    check_sample_shapes(converted.samples, 2)
    (seq,) = converted.sequences
    check_sample_shapes([seq], 2)
    assert seq.intervals.dtype == np.int64 and seq.intervals.shape == (len(converted.samples), 3)
    label, start, end = seq.intervals.T
    assert ((label >= 0) & (label < 51) & (start >= 0) & (start < end)).all()
    assert (end <= seq.x.shape[1]).all()
    assert [s.x.shape[1] for s in converted.samples] == (end - start).tolist()
