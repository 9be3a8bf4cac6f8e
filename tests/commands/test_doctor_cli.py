"""``pcm3 doctor``: the report (text and JSON) and its micro-benchmark, with a tiny budget."""

import json
import platform

import pytest
import torch

from pcm3 import __version__
from pcm3.cli import main
from pcm3.engine.config import PretrainConfig
from pcm3.engine.step_benchmark import benchmark_precisions, random_clips, time_training_step

from ..conftest import TINY_MODEL
from ..engine.hardware_fakes import AVX2_ONLY, AVX512_BF16, CUDA_BF16, CUDA_NO_BF16, use_probe

TINY_STEP = [o for o in TINY_MODEL if not o.startswith(("epochs", "log_every"))]


def _doctor(capsys, *argv):
    code = main(["doctor", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_json_report_has_what_a_bug_report_needs(capsys, monkeypatch):
    use_probe(monkeypatch, AVX512_BF16)
    report = json.loads(_doctor(capsys, "--json", "--seconds", "0.2", *TINY_STEP))
    assert report["pcm3"] == __version__ and report["torch"] == torch.__version__
    assert report["python"] == platform.python_version() and report["os"]
    assert report["cpu"]["model"] == "AVX512-BF16 CPU" and report["cpu"]["native_bf16"] is True
    assert report["cpu"]["flags"] == ["avx2", "avx512f", "avx512_bf16"]
    assert report["device"]["chosen"] == "cpu" and report["threads"]["torch"] == torch.get_num_threads()
    assert report["threads"]["usable_cores"] >= 1
    assert report["auto"]["precision"] == "bf16" and "natively" in report["auto"]["reason"]
    bench = report["benchmark"]
    assert bench["config"].endswith("pcm3_quick.yaml") and bench["batch_size"] == 8
    assert [r["precision"] for r in bench["results"]] == ["fp32", "bf16"]
    assert [r["auto"] for r in bench["results"]] == [False, True]
    for row in bench["results"]:
        assert row["samples_per_s"] > 0 and row["steps"] >= 1


def test_text_report_and_the_auto_pick_of_an_avx2_cpu(capsys, monkeypatch):
    use_probe(monkeypatch, AVX2_ONLY)
    out = _doctor(capsys, "--seconds", "0.2", *TINY_STEP)
    assert "cpu       AVX2-only CPU: avx2; torch kernels AVX2; native bf16 no" in out
    assert "auto      precision fp32 (auto: the CPU has no AVX512-BF16 or AMX" in out
    fp32 = next(line for line in out.splitlines() if line.strip().startswith("fp32"))
    assert "samples/s" in fp32 and fp32.endswith("<- auto")


def test_no_benchmark_with_zero_seconds(capsys):
    report = json.loads(_doctor(capsys, "--json", "--seconds", "0"))
    assert report["benchmark"] == {"skipped": "--seconds 0"}
    assert "benchmark skipped" in _doctor(capsys, "--seconds", "0")


def test_bad_input_is_one_line(capsys):
    assert main(["doctor", "--seconds", "-1"]) == 2
    assert "--seconds must be 0 or more" in capsys.readouterr().err
    assert main(["doctor", "--seconds", "0.1", "batch_sise=3"]) == 2
    assert "unknown config key 'batch_sise'" in capsys.readouterr().err


@pytest.mark.parametrize("probe, expected", [
    (AVX2_ONLY, ["fp32", "bf16"]), (CUDA_BF16, ["fp32", "bf16", "fp16"]), (CUDA_NO_BF16, ["fp32", "fp16"]),
])
def test_precisions_worth_timing(probe, expected):
    device = torch.device("cuda" if probe.cuda_available else "cpu")
    assert benchmark_precisions(device, probe) == expected


def test_random_clips_are_zero_after_their_length():
    x, lengths = random_clips(6, seed=1)
    assert x.shape == (6, 3, int(lengths.max()), 25, 2) and x.dtype == torch.float32
    assert bool((lengths >= 60).all() and (lengths <= 200).all())
    for clip, n in zip(x, lengths, strict=True):
        assert clip[:, n:].abs().sum() == 0 and clip[:, n - 1].abs().sum() > 0


def test_a_budget_shorter_than_the_warmup_times_the_warmup_step():
    from pcm3.config import load_config

    cfg = load_config(PretrainConfig, None, TINY_STEP)
    timing = time_training_step(cfg, torch.device("cpu"), "fp32", seconds=0.0)
    assert timing.warmup_only and timing.steps == 1
    assert timing.samples_per_s == pytest.approx(8 / timing.seconds)
