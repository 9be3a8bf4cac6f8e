"""Usable cores from affinity and cgroup quotas; threads per process."""

import os

import pytest
import torch

from pcm3.engine.threads import (
    CoreCount,
    available_cores,
    cgroup_cpu_quota,
    choose_threads,
    configure_threads,
    parse_cfs,
    parse_cpu_max,
)


def test_parse_cgroup_limits():
    assert parse_cpu_max("150000 100000\n") == 1.5
    assert parse_cpu_max("200000") == 2.0  # period defaults to 100 ms
    assert parse_cpu_max("max 100000") is None and parse_cpu_max("") is None
    assert parse_cfs("50000\n", "100000\n") == 0.5
    assert parse_cfs("-1", "100000") is None and parse_cfs("x", "1") is None


def _tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cgroup_v2_quota_of_the_process_or_an_ancestor(tmp_path):
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/user.slice/job.scope\n")
    root = tmp_path / "cg"
    _tree(root, {"user.slice/job.scope/cpu.max": "max 100000", "user.slice/cpu.max": "250000 100000"})
    assert cgroup_cpu_quota(root, proc) == 2.5
    _tree(root, {"user.slice/job.scope/cpu.max": "100000 100000"})
    assert cgroup_cpu_quota(root, proc) == 1.0  # the tightest limit wins


def test_cgroup_v1_quota(tmp_path):
    proc = tmp_path / "proc_cgroup"
    proc.write_text("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    root = tmp_path / "cg"
    _tree(root, {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000",
                 "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"})
    assert cgroup_cpu_quota(root, proc) == 3.0
    proc.write_text("3:cpu,cpuacct:/\n")
    _tree(root, {"cpu,cpuacct/cpu.cfs_quota_us": "-1", "cpu,cpuacct/cpu.cfs_period_us": "100000"})
    assert cgroup_cpu_quota(root, proc) is None
    assert cgroup_cpu_quota(root, tmp_path / "absent") is None


def test_threads_per_process():
    count = CoreCount(cores=8, machine=64, affinity=8, quota=None)
    assert choose_threads(count, {})[0] == 8
    threads, reason = choose_threads(count, {"LOCAL_WORLD_SIZE": "4"})  # torchrun, 4 processes
    assert threads == 2 and "shared by 4 processes" in reason
    assert choose_threads(count, {"OMP_NUM_THREADS": "3", "LOCAL_WORLD_SIZE": "4"})[0] == 3
    assert choose_threads(CoreCount(1, 64, 1, 0.5), {"LOCAL_WORLD_SIZE": "4"})[0] == 1
    assert "8 of 64 cores usable (affinity 8, no cgroup quota)" in choose_threads(count, {})[1]


def test_this_process():
    count = available_cores()
    assert 1 <= count.cores <= count.machine
    if hasattr(os, "sched_getaffinity"):
        assert count.affinity == len(os.sched_getaffinity(0))
    threads, _ = configure_threads()
    assert torch.get_num_threads() == threads and configure_threads()[0] == threads  # set once


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity (Linux)")
def test_affinity_limits_the_cores(tmp_path):
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
        assert available_cores().cores == 1
    finally:
        os.sched_setaffinity(0, before)
