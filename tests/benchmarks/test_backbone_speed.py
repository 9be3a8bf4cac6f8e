"""``benchmarks/backbone_speed.py``: each job runs at the tiny size, and the table's arithmetic."""

from __future__ import annotations

import pytest

from ..benchmark_scripts import load_benchmark

speed = load_benchmark("backbone_speed")


@pytest.mark.parametrize(("backbone", "workload"), [("stgcn", "full"), ("transformer", "full"),
                                                    ("transformer", "masked90")])
def test_jobs_run_at_the_tiny_size(backbone, workload):
    rows = {v: speed.run_job("tiny", backbone, workload, v, iters=1, warmup=0) for v in ("reference", "fp32")}
    for row in rows.values():
        assert row["finite"] and row["step_s"] > 0 and row["flops"] > 0
        assert (row["batch"], row["frames"]) == (4, 16)
    if backbone == "transformer":  # the same function, attention counted through the same unfused path
        assert rows["fp32"]["flops"] == rows["reference"]["flops"]
    else:  # joints-first graph convolutions where the width grows: fewer FLOPs than the einsum form
        assert rows["fp32"]["flops"] < rows["reference"]["flops"]


def test_speed_up_is_against_the_reference_of_the_same_precision():
    def row(variant, seconds, workload="full"):
        return {"size": "cpu", "backbone": "stgcn", "workload": workload, "variant": variant, "batch": 8,
                "frames": 32, "step_s": seconds, "flops": 4e9, "peak_rss_mb": 500.0, "base_rss_mb": 400.0}

    results = [row("reference", 3.0), row("fp32", 2.0), row("reference_bf16", 1.5), row("bf16", 0.5),
               row("fp32", 1.0, "other")]
    lines = speed.markdown(results, gemm=100.0).splitlines()[2:]
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in lines]
    assert [c[6] for c in cells] == ["–", "1.50x vs reference", "–", "3.00x vs reference_bf16", "–"]
    assert (cells[1][5], cells[1][7], cells[1][8], cells[1][9]) == ("4.0", "500 (100)", "2.0", "2 %")
