"""``pcm3 eval linear --encoder <official checkpoint>`` on a tiny NTU 25-joint store, one synthetic
checkpoint per official format, recognised from its keys or named with ``--encoder-format``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pcm3.cli import main
from pcm3.data import Converted, Sample, write_store
from pcm3.layouts import NTU25

from ..models.conftest import OfficialBIGRU
from ..models.official_checkpoints import (
    official_mamp,
    official_pcm3,
    official_stgcn,
    save_aimclr,
    save_cmd,
    save_mamp,
    save_pcm3,
)


@pytest.fixture(scope="module")
def ntu_store(tmp_path_factory):
    """12 two-person NTU 25-joint clips of 3 classes (12-20 frames), train / val."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(12):
        x = rng.normal(scale=0.1, size=(3, int(rng.integers(12, 21)), 25, 2)).astype(np.float32)
        x[1, :, :, 0] += i % 3
        samples.append(Sample(f"clip{i:03d}", x, i % 3))
    ids = [s.id for s in samples]
    path = tmp_path_factory.mktemp("stores") / "ntu"
    write_store(path, Converted(layout=NTU25, class_names=["a", "b", "c"], samples=samples,
                                splits={"xsub/train": ids[:8], "xsub/val": ids[8:]}))
    return path


def _checkpoint(fmt: str, folder):
    if fmt == "official-skeletonclr":
        return save_aimclr(folder / "skeletonclr.pt", official_stgcn())
    if fmt == "official-aimclr":
        return save_aimclr(folder / "aimclr.pt", official_stgcn(seed=1))
    if fmt == "official-mamp":
        return save_mamp(folder / "mamp.pth", official_mamp())
    if fmt == "official-pcm3":
        return save_pcm3(folder / "pcm3.pth.tar", official_pcm3())
    torch.manual_seed(0)
    streams = {s: OfficialBIGRU(150, 4, 2) for s in ("joint", "motion", "bone")}
    return save_cmd(folder / "cmd.pth.tar", streams)


@pytest.mark.parametrize("fmt", ["official-pcm3", "official-cmd", "official-skeletonclr", "official-aimclr",
                                 "official-mamp"])
def test_eval_linear_runs_on_an_official_checkpoint(ntu_store, tmp_path, capsys, fmt):
    path = _checkpoint(fmt, tmp_path)
    named = ["--encoder-format", fmt] if fmt == "official-aimclr" else []  # AimCLR = SkeletonCLR's keys
    code = main(["eval", "linear", "--encoder", str(path), *named, "--data", str(ntu_store), "--json",
                 "--out", str(tmp_path / "out"), "epochs=2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    metrics = json.loads(out.strip().splitlines()[-1])
    assert set(metrics) == {"top1", "top5"} and 0 <= metrics["top1"] <= 100
    record = json.loads((tmp_path / "out" / "linear.json").read_text())
    assert record["encoder"] == str(path)


def test_eval_refuses_an_unknown_format_and_a_stream_for_raw(ntu_store, tmp_path, capsys):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    assert main(["eval", "knn", "--encoder", str(path), "--data", str(ntu_store)]) != 0
    err = capsys.readouterr().err
    assert f"{path}: unrecognised encoder file format" in err and "official-skeletonclr" in err
    argv = ["eval", "knn", "--encoder", "raw", "--encoder-stream", "bone", "--data", str(ntu_store)]
    assert main(argv) != 0
    assert "--encoder-stream are for encoder files" in capsys.readouterr().err
