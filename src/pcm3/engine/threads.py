"""Intra-op threads: as many as the cores this process may really use.

``os.cpu_count()`` counts the machine; a container or ``taskset`` gives the process fewer cores.
:func:`available_cores` takes the smallest of the CPU affinity (``os.sched_getaffinity``) and
the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded
up. :func:`configure_threads` sets ``torch.set_num_threads`` from it, shared between the
processes ``torchrun`` starts on this machine, unless ``OMP_NUM_THREADS`` says otherwise.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CoreCount:
    """``cores``: usable by this process; ``machine``: ``os.cpu_count()``; ``affinity``: cores
    the process may run on; ``quota``: the cgroup CPU limit in cores (None: no limit)."""

    cores: int
    machine: int
    affinity: int
    quota: float | None

    def describe(self) -> str:
        limits = [f"affinity {self.affinity}"]
        limits.append(f"cgroup quota {self.quota:g}" if self.quota is not None else "no cgroup quota")
        return f"{self.cores} of {self.machine} cores usable ({', '.join(limits)})"


def parse_cpu_max(text: str) -> float | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` text (``"150000 100000"`` -> 1.5; ``"max ..."`` -> None)."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """Cores allowed by cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: None)."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _cgroup_dirs(proc_cgroup: str, root: Path) -> list[Path]:
    """The cgroup folders that may limit this process's CPU: its own and each ancestor, v2 and v1."""
    out: list[Path] = []
    for line in proc_cgroup.splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hier == "0" and not controllers:
            bases = [root, root / "unified"]
        elif "cpu" in controllers.split(","):
            bases = [root / controllers, root / "cpu", root / "cpu,cpuacct"]
        else:
            continue
        rel = Path(path.strip().lstrip("/"))
        chain = [rel, *rel.parents] if str(rel) not in ("", ".") else [Path()]
        out += [base / p for base in bases for p in chain]
    return out


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The tightest cgroup CPU limit of this process in cores (None: none found, or not Linux)."""
    text = _read(proc_cgroup)
    if text is None:
        return None
    limits = []
    for folder in dict.fromkeys(_cgroup_dirs(text, root)):
        cpu_max = _read(folder / "cpu.max")
        if cpu_max is not None:
            limits.append(parse_cpu_max(cpu_max))
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            limits.append(parse_cfs(quota, period))
    found = [q for q in limits if q is not None]
    return min(found) if found else None


def available_cores() -> CoreCount:
    """The cores this process may use: min(affinity, ceil(cgroup quota)), at least 1."""
    machine = os.cpu_count() or 1
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        affinity = machine
    quota = cgroup_cpu_quota()
    cores = min(affinity, math.ceil(quota)) if quota is not None else affinity
    return CoreCount(max(1, cores), machine, affinity, quota)


def choose_threads(count: CoreCount, env: dict[str, str]) -> tuple[int, str]:
    """``(threads, reason)`` for one process: ``OMP_NUM_THREADS`` when set, else the usable
    cores divided among the ``LOCAL_WORLD_SIZE`` processes torchrun started on this machine."""
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        return int(omp), f"OMP_NUM_THREADS={omp}; {count.describe()}"
    local = env.get("LOCAL_WORLD_SIZE", "").strip()
    processes = int(local) if local.isdigit() and int(local) > 0 else 1
    threads = max(1, count.cores // processes)
    share = f", shared by {processes} processes" if processes > 1 else ""
    return threads, f"{count.describe()}{share}"


def configure_threads(env: dict[str, str] | None = None) -> tuple[int, str]:
    """Set torch's intra-op threads by :func:`choose_threads` (once per process: later calls
    only report it); returns ``(threads, reason)``."""
    global _CONFIGURED
    if _CONFIGURED is None:
        import torch

        threads, reason = choose_threads(available_cores(), dict(os.environ if env is None else env))
        torch.set_num_threads(threads)
        _CONFIGURED = (threads, reason)
    return _CONFIGURED


_CONFIGURED: tuple[int, str] | None = None
