"""Pre-training speed of every registered method at equal backbone, widths and batch, on this machine.

    .venv/bin/python benchmarks/method_speed.py --size cpu --repeats 5 --write benchmarks/README.md
    .venv/bin/python benchmarks/method_speed.py --size tiny --repeats 1 --warmup 0     # smoke run
    .venv/bin/python benchmarks/method_speed.py --size cpu --methods pcm3,skeletonclr,cmd,mamp \
        --backbone default --reference --write benchmarks/README.md --marker method-speed-reference

One training step as the trainer runs it (``before_step``, forward under the precision policy,
backward, optimiser step, ``after_step``: EMA and queue updates) on the same random-walk batch
``(N, 3, T, 25, 2)`` for each method, on one backbone (default ``transformer``: the one every
method can use, MAMP needs its token interface). Widths, batch, view length and queue come
from ``pretrain_speed.py``'s sizes; each method keeps its own default options (its paper's),
except at ``tiny``, where it takes its ``tiny()`` options. Each method runs in a fresh
subprocess; the table gives the median step time of ``--repeats`` timed steps after
``--warmup`` steps, and samples/s = batch / median step. The report names the CPU
(``machine_blocks.machine``); ``--write`` replaces the block between the ``--marker`` comments
(default ``method-speed``) of the file. ``--backbone default`` runs each method on its own
registered backbone (its paper's) instead of one shared backbone.

``--reference`` adds a second table: for every method with an official-formulation step
(``REFERENCES``: PCM3, SkeletonCLR, CMD, MAMP), on that method's paper backbone
(``PAPER_BACKBONES``), our step vs the reference step at the same configuration, each in a fresh
process, and the speed-up (our samples/s over the reference's). Both include making the views
from the raw batch: ours on the tensor path inside the method's forward, the reference sample by
sample on the host as the official feeders do. The reference runs in fp32 with the same optimiser
(``build_optimizer(cfg.optim)``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine_blocks import machine, write_marked
from pretrain_speed import SIZES, make_config, raw_batch, variant_precision

PAPER_BACKBONES = {"pcm3": "bigru", "skeletonclr": "stgcn", "cmd": "bigru", "mamp": "transformer"}
REFERENCES = {  # method -> (module in benchmarks/, model class); each module has reference_train_step
    "pcm3": ("official_reference_step", "OfficialPCM3"),
    "skeletonclr": ("reference_skeletonclr_step", "OfficialSkeletonCLR"),
    "cmd": ("reference_cmd_step", "OfficialCMD"),
    "mamp": ("reference_mamp_step", "OfficialMAMP"),
}


def method_config(size: str, method: str, backbone: str, precision: str):
    """The pre-training config of ``method`` on ``backbone`` at ``size`` (``tiny``: the method's
    ``tiny()`` options)."""
    from pcm3.config import to_dict
    from pcm3.methods.registry import get_method

    extra = []
    if size == "tiny":
        tiny = to_dict(get_method(method).options.tiny())
        extra += [f"{method}.{k}={json.dumps(v)}" for k, v in tiny.items()
                  if k not in ("queue_size", "moco")]  # the queue stays the size's, equal for every method
    return make_config(size, variant_precision(precision), backbone, tuple(extra), method=method)


def time_method(size: str, method: str, backbone: str, precision: str, repeats: int, warmup: int) -> dict:
    """Median seconds of one full training step of ``method`` (and the loss terms of the last)."""
    from pcm3.engine.optim import build_optimizer
    from pcm3.engine.precision import autocast
    from pcm3.engine.trainer import step_generator
    from pcm3.layouts import NTU25
    from pcm3.methods import build_method

    cfg = method_config(size, method, backbone, precision)
    torch.manual_seed(0)
    data, lengths = raw_batch(size)
    x, lens = torch.from_numpy(data), torch.from_numpy(lengths)
    model = build_method(cfg, NTU25, 3, 2).train()
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    cpu = torch.device("cpu")
    total = warmup + repeats
    times, values = [], {}
    for i in range(total):
        tick = time.perf_counter()
        model.before_step(i, total)
        with autocast(cpu, cfg.precision):
            losses = model(x, lens, step_generator(cfg.seed, i, 0, cpu))
        values = {k: float(v.detach()) for k, v in losses.items()}
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        model.after_step(i + 1)
        if i >= warmup:
            times.append(time.perf_counter() - tick)
    step = statistics.median(times)
    return {"method": method, "backbone": backbone, "size": size, "precision": cfg.precision,
            "batch": cfg.batch_size, "frames": cfg.augment.view_frames, "step_s": step, "times": times,
            "samples_per_s": cfg.batch_size / step, "losses": values,
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def time_reference(size: str, method: str, repeats: int, warmup: int) -> dict:
    """Median seconds of one official-formulation step of ``method`` on its paper backbone, at the
    configuration of :func:`method_config` (per-sample host views included)."""
    from pcm3.engine.optim import build_optimizer
    from pcm3.layouts import NTU25

    module_name, model_name = REFERENCES[method]
    module = importlib.import_module(module_name)
    backbone = PAPER_BACKBONES[method]
    cfg = method_config(size, method, backbone, "fp32")
    torch.manual_seed(0)
    random.seed(0)
    data, lengths = raw_batch(size)
    model = getattr(module, model_name)(cfg, NTU25, 3, 2).train()
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    rng = np.random.RandomState(0)
    times, values = [], {}
    for i in range(warmup + repeats):
        tick = time.perf_counter()
        values = module.reference_train_step(model, optimizer, data, lengths, rng)
        if i >= warmup:
            times.append(time.perf_counter() - tick)
    step = statistics.median(times)
    return {"method": method, "backbone": backbone, "size": size, "precision": "fp32", "reference": True,
            "batch": cfg.batch_size, "frames": cfg.augment.view_frames, "step_s": step, "times": times,
            "samples_per_s": cfg.batch_size / step, "losses": values,
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def reference_markdown(pairs: list[tuple[dict, dict]]) -> str:
    """One row per method on its paper backbone: ours vs the official formulation (``pairs`` of
    (ours, reference) results) and the speed-up = our samples/s / the reference's."""
    lines = ["| method | paper backbone | size | batch | frames | ours: precision | ours samples/s "
             "| reference samples/s (fp32) | speed-up |", "|---|---|---|---:|---:|---|---:|---:|---:|"]
    for ours, ref in pairs:
        lines.append(f"| {ours['method']} | {ours['backbone']} | {ours['size']} | {ours['batch']} "
                     f"| {ours['frames']} | {ours['precision']} | {ours['samples_per_s']:.1f} "
                     f"| {ref['samples_per_s']:.1f} | {ours['samples_per_s'] / ref['samples_per_s']:.2f}x |")
    return "\n".join(lines)


def backbone_of(method: str, backbone: str) -> str:
    """``backbone``, or with ``default`` the method's registered default (its paper's)."""
    from pcm3.methods.registry import get_method

    return get_method(method).default_backbone if backbone == "default" else backbone


def run_worker(job: dict, threads: int) -> dict:
    """``job`` (the arguments of :func:`time_method`, or of :func:`time_reference` with
    ``"reference": true``) in a fresh process; its result."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job),
                           "--threads", str(threads)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        kind = "reference" if job.get("reference") else "ours"
        raise SystemExit(f"method {job['method']} ({kind}) failed:\n{done.stderr[-4000:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    kind = "reference" if r.get("reference") else r["precision"]
    print(f"{r['method']} on {r['backbone']} ({kind}): step {r['step_s']:.3f} s {r['times']}, "
          f"{r['samples_per_s']:.1f} samples/s", file=sys.stderr, flush=True)
    return r


def markdown(results: list[dict]) -> str:
    """One row per method: step time, samples/s, and the speed relative to the fastest."""
    fastest = max(r["samples_per_s"] for r in results)
    lines = ["| method | backbone | size | batch | frames | precision | trained parameters | step s (median) "
             "| samples/s | vs fastest |", "|---|---|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in sorted(results, key=lambda r: -r["samples_per_s"]):
        lines.append(f"| {r['method']} | {r['backbone']} | {r['size']} | {r['batch']} | {r['frames']} "
                     f"| {r['precision']} | {r['parameters']:,} | {r['step_s']:.3f} "
                     f"| {r['samples_per_s']:.1f} | {r['samples_per_s'] / fastest:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    from pcm3.methods.registry import known_methods, load_builtin_methods

    load_builtin_methods()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=",".join(known_methods()), help="comma-separated (default: all)")
    p.add_argument("--backbone", default="transformer",
                   help="one backbone for every method, or 'default': each method's own (its paper's)")
    p.add_argument("--size", default="cpu", choices=list(SIZES))
    p.add_argument("--precision", default="auto", help="fp32, bf16 or auto (what pcm3 picks here)")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per method (the median is reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: the cores this process may use)")
    p.add_argument("--reference", action="store_true",
                   help="also time the official-formulation step of each method on its paper backbone")
    p.add_argument("--ref-repeats", type=int, default=2, help="timed reference steps per method")
    p.add_argument("--write", type=Path, help="put the results block into this Markdown file")
    p.add_argument("--marker", default="method-speed",
                   help="the block's markers in --write: <!-- MARKER:start --> ... <!-- MARKER:end -->")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads <= 0:
        from pcm3.engine.threads import available_cores

        args.threads = available_cores().cores
    torch.set_num_threads(args.threads)
    if args.worker:
        job = json.loads(args.worker)
        if job.pop("reference", False):
            print(json.dumps(time_reference(**job)))
        else:
            print(json.dumps(time_method(**job)))
        return
    m = machine()
    print(f"machine: {m['capability']}; {m['cores']}", file=sys.stderr, flush=True)
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    methods = args.methods.split(",")
    job = {"size": args.size, "precision": args.precision, "repeats": args.repeats, "warmup": args.warmup}
    results = [run_worker({**job, "method": m, "backbone": backbone_of(m, args.backbone)}, args.threads)
               for m in methods]
    pairs = []
    for method in (name for name in methods if args.reference and name in REFERENCES):
        backbone = PAPER_BACKBONES[method]
        ours = next((r for r in results if r["method"] == method and r["backbone"] == backbone), None)
        job = {"size": args.size, "method": method, "warmup": args.warmup}
        ours = ours or run_worker({**job, "backbone": backbone, "precision": args.precision,
                                   "repeats": args.repeats}, args.threads)
        reference = run_worker({**job, "reference": True, "repeats": args.ref_repeats}, args.threads)
        pairs.append((ours, reference))
    without = [name for name in methods if name not in REFERENCES]
    title = "Ours vs the official formulation (`--reference`), each method on its paper backbone:"
    comparison = ["", title, "", reference_markdown(pairs)] if pairs else []
    if pairs and without:
        comparison.append(f"\nNo official-formulation step written for: {', '.join(without)}.")
    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    start, end = f"<!-- {args.marker}:start -->", f"<!-- {args.marker}:end -->"
    block = "\n".join([
        start, f"Command: `python benchmarks/method_speed.py {' '.join(sys.argv[1:])}`  ",
        f"Date: {datetime.datetime.now().isoformat(timespec='minutes')}  ",
        f"Machine: {m['capability']}; {m['cores']}; torch {m['torch']}, python {m['python']}, "
        f"torch threads {args.threads}  ",
        f"Load average (1/5/15 min) before: {load_before}, after: {load_after}  ",
        f"Steps: {args.repeats} timed after {args.warmup} warm-up, per method in a fresh process"
        + (f" (reference: {args.ref_repeats} timed)" if args.reference else "") + "  ",
        "", markdown(results), *comparison, "", end])
    print(block)
    if args.write:
        write_marked(args.write, start, end, block)


if __name__ == "__main__":
    main()
