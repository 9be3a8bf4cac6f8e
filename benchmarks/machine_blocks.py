"""The machine a speed table was measured on, and one results block per kind of CPU.

A speed claim names its CPU: AVX2-only and AVX512-BF16 machines of the same size differ by
an order of magnitude in bf16. :func:`machine` describes this one (the pcm3 hardware probe);
:func:`write_block` keeps one Markdown block per kind of CPU between
``<!-- results:start KIND -->`` and ``<!-- results:end KIND -->`` markers.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

START, END = "<!-- results:start", "<!-- results:end"  # + " <cpu kind> -->"


def machine() -> dict[str, str]:
    """This machine: the capability line (CPU model, vector extensions, torch kernels, native bf16),
    its kind (the key of its results block), usable cores, versions."""
    from pcm3.engine.hardware import probe_hardware
    from pcm3.engine.threads import available_cores

    probe = probe_hardware()
    return {"capability": probe.capability_line(), "kind": cpu_kind(probe.cpu_flags),
            "cores": available_cores().describe(), "torch": torch.__version__,
            "python": platform.python_version()}


def cpu_kind(flags: frozenset[str]) -> str:
    """``amx_bf16``, ``avx512_bf16``, ``avx512``, ``avx2`` or ``other``: what decides the step's speed."""
    for flag, kind in (("amx_bf16", "amx_bf16"), ("avx512_bf16", "avx512_bf16"), ("avx512f", "avx512"),
                       ("avx2", "avx2")):
        if flag in flags:
            return kind
    return "other"


CPU_KIND_TITLES = {"amx_bf16": "AMX CPU (native bf16)", "avx512_bf16": "AVX512-BF16 CPU (native bf16)",
                   "avx512": "AVX-512 CPU without BF16 (bf16 emulated)",
                   "avx2": "AVX2-only CPU (bf16 emulated)", "other": "other CPU"}


def write_block(text: str, block: str, kind: str) -> str:
    """``text`` with the results block of ``kind`` replaced by ``block``, or ``block`` added after
    the last results block (at the end when there is none)."""
    start, end = f"{START} {kind} -->", f"{END} {kind} -->"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        return head + block + rest.partition(end)[2]
    last = text.rfind(END)
    if last < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    cut = text.index("-->", last) + 3
    return text[:cut] + "\n\n" + block + text[cut:]


def write_marked(path: Path, start: str, end: str, block: str) -> None:
    """Replace the text between the markers ``start`` and ``end`` of the Markdown file ``path`` with
    ``block`` (which carries both markers), adding the markers at the end when absent (and the
    file when it does not exist)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start not in text:
        text += f"\n{start}\n{end}\n"
    head, _, rest = text.partition(start)
    path.write_text(head + block + rest.partition(end)[2])
