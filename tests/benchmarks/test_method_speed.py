"""``benchmarks/method_speed.py``: equal backbone and batch for every method, a tiny step runs,
and the table's arithmetic."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its siblings
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


speed = _load("method_speed")


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
