"""``benchmarks/method_speed.py``: equal backbone and batch for every method, a tiny step runs,
and the table's arithmetic."""

from __future__ import annotations

import sys

import pytest

from ..benchmark_scripts import BENCHMARKS, load_benchmark

speed = load_benchmark("method_speed")


def test_every_method_gets_the_same_backbone_widths_and_batch():
    from pcm3.methods.registry import known_methods, load_builtin_methods

    load_builtin_methods()
    methods = ("pcm3", "skeletonclr", "mamp")
    configs = {m: speed.method_config("tiny", m, "transformer", "fp32") for m in methods}
    assert {c.method for c in configs.values()} == {"pcm3", "skeletonclr", "mamp"}
    shared = {(c.model.backbone, repr(c.model.options), c.batch_size, c.augment.view_frames)
              for c in configs.values()}
    assert shared == {("transformer", repr(configs["pcm3"].model.options), 8, 16)}
    options = {m: c.method_options for m, c in configs.items()}
    assert (options["pcm3"].moco.queue_size, options["skeletonclr"].queue_size) == (64, 64)
    assert set(known_methods()) >= {"pcm3", "pcm3pp", "skeletonclr", "cmd", "mamp"}


def test_a_tiny_step_runs():
    r = speed.time_method("tiny", "skeletonclr", "transformer", "fp32", repeats=1, warmup=0)
    assert r["step_s"] > 0 and r["samples_per_s"] == r["batch"] / r["step_s"] and r["parameters"] > 0
    assert all(abs(v) < float("inf") for v in r["losses"].values())


def test_table_sorts_by_speed_and_compares_with_the_fastest():
    def row(method, step):
        return {"method": method, "backbone": "transformer", "size": "cpu", "batch": 64, "frames": 64,
                "precision": "fp32", "parameters": 1234567, "step_s": step, "samples_per_s": 64 / step}

    lines = speed.markdown([row("pcm3", 2.0), row("mamp", 0.5)]).splitlines()
    assert lines[2] == "| mamp | transformer | cpu | 64 | 64 | fp32 | 1,234,567 | 0.500 | 128.0 | 1.00x |"
    assert lines[3] == "| pcm3 | transformer | cpu | 64 | 64 | fp32 | 1,234,567 | 2.000 | 32.0 | 0.25x |"


def test_reference_rows_run_for_one_method_in_fresh_processes():
    """``--reference`` on MAMP (paper backbone = the equal backbone, so ours is timed once)."""
    import subprocess

    done = subprocess.run([sys.executable, str(BENCHMARKS / "method_speed.py"), "--size", "tiny", "--methods",
                           "mamp", "--reference", "--repeats", "1", "--ref-repeats", "1", "--warmup", "0",
                           "--precision", "fp32", "--threads", "1"],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    prefix = "| mamp | transformer | tiny | 8 | 16 "
    rows = [line for line in done.stdout.splitlines() if line.startswith(prefix)]
    assert len(rows) == 2  # the equal-backbone row and the reference row
    cells = [c.strip() for c in rows[1].strip("|").split("|")]
    ours, reference, speedup = float(cells[6]), float(cells[7]), float(cells[8].rstrip("x"))
    assert ours > 0 and reference > 0 and speedup == pytest.approx(ours / reference, abs=0.02)


def test_reference_table_gives_ours_over_reference():
    def row(step, precision):
        return {"method": "cmd", "backbone": "bigru", "size": "cpu", "batch": 64, "frames": 64,
                "precision": precision, "samples_per_s": 64 / step}

    lines = speed.reference_markdown([(row(1.0, "bf16"), row(4.0, "fp32"))]).splitlines()
    assert lines[2] == "| cmd | bigru | cpu | 64 | 64 | bf16 | 64.0 | 16.0 | 4.00x |"


def test_every_reference_is_registered_with_a_paper_backbone():
    from pcm3.methods.registry import get_method, load_builtin_methods

    load_builtin_methods()
    assert set(speed.REFERENCES) == set(speed.PAPER_BACKBONES)
    for method, backbone in speed.PAPER_BACKBONES.items():
        assert get_method(method).default_backbone == backbone
