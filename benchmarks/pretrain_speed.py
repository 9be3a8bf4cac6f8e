"""Speed of one PCM3 pre-training step: our method vs the official formulation, on this machine.

    .venv/bin/python benchmarks/pretrain_speed.py --sizes paper,cpu --iters 3 --write benchmarks/README.md
    .venv/bin/python benchmarks/pretrain_speed.py --sizes tiny --iters 1          # smoke run

For every size, each variant runs in a fresh subprocess (so ``ru_maxrss`` is that variant's
peak): ``reference`` (:mod:`official_reference_step`: per-sample NumPy views, frame-by-frame
encoder called once per view, decoder twice, batch-shared mask and mix), ``fp32`` and ``bf16``
(our :class:`pcm3.methods.PCM3` step as ``Trainer._train_step`` runs it: views + forward + backward
+ SGD, under ``pcm3.engine.precision.autocast``) and ``auto`` (the same step in the precision
``precision: auto`` picks on this machine: bf16 where the CPU has AVX512-BF16 or AMX, else fp32).
All at equal configuration: same widths, batch, view length and loss terms. Also: the analytic
FLOP count of a step, this machine's GEMM throughput in fp32 / bf16, and the views alone. Medians
throughout. The report names the machine: CPU model, its vector extensions (AVX2, AVX-512,
AVX512-BF16, AMX), PyTorch's CPU kernel level and whether bf16 is native. ``--write`` keeps one
results block per kind of CPU (replacing only the block of this machine's kind).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine_blocks import CPU_KIND_TITLES, END, START, machine, write_block

SIZES = {  # model widths and batch; every other setting is the paper default (PretrainConfig)
    "paper": {"hidden": 1024, "layers": 3, "projector": 2048, "neck": 512, "decoder": 512,
              "prompt": 128, "batch": 128, "frames": 64, "queue": 16384, "raw": (100, 300)},
    "cpu": {"hidden": 256, "layers": 2, "projector": 1024, "neck": 256, "decoder": 512,
            "prompt": 64, "batch": 64, "frames": 64, "queue": 16384, "raw": (100, 300)},
    "tiny": {"hidden": 32, "layers": 2, "projector": 64, "neck": 32, "decoder": 32,
             "prompt": 8, "batch": 8, "frames": 16, "queue": 64, "raw": (20, 40)},
}
VARIANTS = ("reference", "fp32", "bf16", "auto")
BACKBONE_SIZES = {  # each backbone's options per size (bigru's come from SIZES)
    "stgcn": {"paper": {}, "cpu": {}, "tiny": {"base_channels": 4, "out_channels": 16}},
    "transformer": {"paper": {}, "cpu": {"embed_dim": 128, "depth": 4, "num_heads": 4},
                    "tiny": {"embed_dim": 16, "depth": 2, "num_heads": 2, "max_frames": 32}},
}
HERE = Path(__file__).resolve().parent


def backbone_overrides(size: str, backbone: str) -> tuple[list[str], int]:
    """``model.<backbone>.*`` overrides of ``size`` and the backbone's feature width."""
    from pcm3.models.registry import BACKBONES, load_builtin_backbones

    s = SIZES[size]
    if backbone == "bigru":
        return ([f"model.bigru.hidden_size={s['hidden']}", f"model.bigru.num_layers={s['layers']}"],
                2 * s["hidden"])
    load_builtin_backbones()
    options = {**BACKBONE_SIZES[backbone][size]}
    if backbone == "transformer":
        options.setdefault("max_frames", max(s["frames"], 32))
    width = BACKBONES[backbone].options(**options)
    dim = getattr(width, "out_channels", None) or width.embed_dim
    return [f"model.backbone={backbone}"] + [f"model.{backbone}.{k}={v}" for k, v in options.items()], dim


def queue_override(method: str, size: int) -> list[str]:
    """The override giving ``method`` a key queue of ``size`` (none for a method without a queue)."""
    import dataclasses

    from pcm3.methods.registry import get_method

    fields = {f.name for f in dataclasses.fields(get_method(method).options)}
    if "moco" in fields:  # pcm3, pcm3pp
        return [f"{method}.moco.queue_size={size}"]
    return [f"{method}.queue_size={size}"] if "queue_size" in fields else []


def make_config(size: str, precision: str = "fp32", backbone: str = "bigru", extra: tuple[str, ...] = (),
                method: str = "pcm3"):
    """The step's ``PretrainConfig`` of ``method`` at ``size`` (``extra``: more overrides, applied last)."""
    from pcm3.config import load_config
    from pcm3.engine.config import PretrainConfig

    s = SIZES[size]
    model, dim = backbone_overrides(size, backbone)
    prompt = min(s["prompt"], dim // 2 - 1)  # the task prompt must stay below half the feature width
    overrides = [f"method={method}", *model, f"model.projector_hidden={s['projector']}",
                 f"model.neck_hidden={s['neck']}",
                 f"model.decoder_hidden_size={s['decoder']}", f"model.prompt_length={prompt}",
                 f"batch_size={s['batch']}", f"augment.view_frames={s['frames']}",
                 f"augment.crop_min_frames={s['frames']}", f"augment.mask_segment_frames={s['frames'] // 8}",
                 *queue_override(method, s["queue"]), f"precision={precision}", *extra]
    return load_config(PretrainConfig, None, overrides)


def raw_batch(size: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3, T_max, 25, 2)`` float32 random-walk clips, zero past their length ``U[raw]``."""
    s = SIZES[size]
    rng = np.random.default_rng(seed)
    lo, hi = s["raw"]
    data = np.cumsum(rng.normal(scale=0.02, size=(s["batch"], 3, hi, 25, 2)), axis=2).astype(np.float32)
    lengths = rng.integers(lo, hi + 1, size=s["batch"])
    data *= (np.arange(hi)[None, :] < lengths[:, None])[:, None, :, None, None]
    return data, lengths


# ---------------------------------------------------------------- analytic FLOPs
def gru_macs(inputs: int, hidden: int, layers: int, directions: int = 1) -> int:
    """Multiply-adds per frame per sample of a multi-layer GRU: ``Σ_l 3H (I_l + H)`` per direction."""
    total, width = 0, inputs
    for _ in range(layers):
        total += directions * 3 * hidden * (width + hidden)
        width = directions * hidden
    return total


def step_flops(size: str) -> dict[str, float]:
    """FLOPs (2 x MACs) of one step; backward = 2 x forward for every pass that gets gradients."""
    s = SIZES[size]
    f, n, t, d = 150, s["batch"], s["frames"], 2 * s["hidden"]
    encoder = gru_macs(f, s["hidden"], s["layers"], 2) * n * t
    projector = (d * s["projector"] + s["projector"] * 128) * n
    neck_decoder = (d * s["neck"] + s["neck"] ** 2 + gru_macs(s["neck"], s["decoder"], 2)
                    + s["decoder"] * f) * n * t
    queue = n * s["queue"] * 128  # one (N, 128) x (128, K) product with the queue
    macs = {"encoder": (4 * 3 + 1) * encoder,  # 4 passes with gradients, the key pass without
            "projector": (4 * 3 + 1) * projector, "neck+decoder": 2 * 3 * neck_decoder,
            "losses": (4 * 3 + 2) * queue}  # 4 students with gradients, 2 distinct teachers (k, kc)
    return {k: 2.0 * v for k, v in macs.items()}


# ---------------------------------------------------------------- workers (one variant per process)
def _rss_mb() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def variant_precision(variant: str) -> str:
    """The precision a variant runs in (``auto``: what the policy picks on this machine's CPU)."""
    from pcm3.engine.precision import precision_on

    if variant == "reference":
        return "fp32"
    return precision_on(variant, torch.device("cpu"))[0] if variant == "auto" else variant


def run_variant(size: str, variant: str, iters: int, warmup: int, profile: bool,
                backbone: str = "bigru") -> dict:
    from official_reference_step import OfficialPCM3, official_views, reference_train_step

    from pcm3.engine.optim import build_optimizer
    from pcm3.engine.precision import autocast
    from pcm3.engine.trainer import step_generator
    from pcm3.layouts import NTU25
    from pcm3.methods import build_method

    cfg = make_config(size, variant_precision(variant), backbone)
    data, lengths = raw_batch(size)
    torch.manual_seed(0)
    random.seed(0)
    cpu = torch.device("cpu")
    if variant == "reference":
        model = OfficialPCM3(cfg, NTU25, 3, 2).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                                    weight_decay=cfg.optim.weight_decay)
        rng = np.random.RandomState(0)

        def step(i: int) -> dict[str, float]:
            return reference_train_step(model, optimizer, data, lengths, rng)

        def views(i: int) -> object:
            return official_views(data, lengths, cfg, NTU25, rng)
    else:
        method = build_method(cfg, NTU25, 3, 2).train()
        optimizer = build_optimizer(method.parameters(), cfg.optim)
        x, lens = torch.from_numpy(data), torch.from_numpy(lengths)

        def step(i: int) -> dict[str, float]:  # Trainer._train_step without the logging
            with autocast(cpu, cfg.precision):
                losses = method(x, lens, step_generator(cfg.seed, i, 0, cpu))
            values = {k: float(v.detach()) for k, v in losses.items()}
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            return values

        def views(i: int) -> object:
            with autocast(cpu, cfg.precision):
                return method.make_views(x, lens, step_generator(cfg.seed, i, 0, cpu))
    base_rss = _rss_mb()
    times, values = [], {}
    for i in range(warmup + iters):
        tick = time.perf_counter()
        values = step(i)
        if i >= warmup:
            times.append(time.perf_counter() - tick)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    view_times = []
    for i in range(max(5, iters)):
        tick = time.perf_counter()
        views(i)
        view_times.append(time.perf_counter() - tick)
    flops = None
    if backbone != "bigru":  # counted on one step (the GRU's fused kernel is counted analytically)
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            step(warmup + iters)
        flops = float(counter.get_total_flops())
    result = {"size": size, "variant": variant, "backbone": backbone, "precision": cfg.precision,
              "flops": flops,
              "step_s": statistics.median(times), "times": times,
              "views_s": statistics.median(view_times[1:]), "peak_rss_mb": peak,
              "base_rss_mb": base_rss, "losses": values,
              "finite": all(np.isfinite(v) for v in values.values())}
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            step(warmup + iters)
        result["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
    return result


def gemm_throughput(size: str, repeats: int = 7, seconds: float = 0.2) -> dict[str, float]:
    """Median GFLOP/s of ``torch.matmul`` on the encoder's GEMM shapes, fp32 and bf16."""
    s = SIZES[size]
    h, b, rows = s["hidden"], s["batch"], s["batch"] * s["frames"]
    shapes = {"input (B*T,2H)x(2H,3H)": (rows, 2 * h, 3 * h), "recurrent (3B,H)x(H,3H)": (3 * b, h, 3 * h)}
    out = {}
    for name, (m, k, n) in shapes.items():
        for dtype in (torch.float32, torch.bfloat16):
            a, w = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
            tick = time.perf_counter()
            torch.matmul(a, w)
            inner = max(1, int(seconds / (time.perf_counter() - tick)))
            runs = []
            for _ in range(repeats):
                tick = time.perf_counter()
                for _ in range(inner):
                    torch.matmul(a, w)
                runs.append(2 * m * k * n * inner / (time.perf_counter() - tick) / 1e9)
            out[f"{name} {str(dtype).removeprefix('torch.')}"] = statistics.median(runs)
    return out


# ---------------------------------------------------------------- driver
def run_subprocess(args: argparse.Namespace, job: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job),
           "--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker {job} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(results: list[dict], gemm: dict[str, dict], args: argparse.Namespace) -> str:
    lines = ["| backbone | size | variant | step s (median) | samples/s | speed-up vs reference "
             "| peak RSS MB "
             "(step working set) | views s/batch | views % of the step | GFLOP/s | % of fp32 GEMM |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for backbone, size in ((b, z) for b in args.backbones for z in args.sizes):
        rows = {r["variant"]: r for r in results
                if r["size"] == size and r.get("backbone", "bigru") == backbone}
        gemm_fp32 = gemm[size]["input (B*T,2H)x(2H,3H) float32"]
        for variant, r in rows.items():
            flops = r["flops"] if r.get("flops") else sum(step_flops(size).values())
            ref = rows.get("reference")
            speed = f"{ref['step_s'] / r['step_s']:.2f}x" if ref else "–"
            views_pct = f"{100 * r['views_s'] / r['step_s']:.1f} %"
            gflops = flops / r["step_s"] / 1e9
            name = f"auto ({r['precision']})" if variant == "auto" else variant
            lines.append(
                f"| {backbone} | {size} | {name} | {r['step_s']:.3f} "
                f"| {SIZES[size]['batch'] / r['step_s']:.1f} "
                f"| {speed} "
                f"| {r['peak_rss_mb']:.0f} ({r['peak_rss_mb'] - r['base_rss_mb']:.0f}) | {r['views_s']:.4f} "
                f"| {views_pct} | {gflops:.1f} | {100 * gflops / gemm_fp32:.0f} % |")
    lines += ["", "| size | step GFLOP (analytic) | " + " | ".join(next(iter(gemm.values()))) + " |",
              "|---|---|" + "---|" * len(next(iter(gemm.values())))]
    for size in args.sizes:
        parts = step_flops(size)
        detail = ", ".join(f"{k} {v / 1e9:.4g}" for k, v in parts.items())
        lines.append(f"| {size} | {sum(parts.values()) / 1e9:.4g} ({detail}) | "
                     + " | ".join(f"{v:.0f} GFLOP/s" for v in gemm[size].values()) + " |")
    return "\n".join(lines)


def report(results: list[dict], gemm: dict, args: argparse.Namespace, load: tuple) -> str:
    m = machine()
    command = "python benchmarks/pretrain_speed.py " + " ".join(sys.argv[1:])
    return "\n".join([
        f"{START} {m['kind']} -->",
        f"#### {CPU_KIND_TITLES[m['kind']]}",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.datetime.now().isoformat(timespec='minutes')}  ",
        f"Machine: {m['capability']}; {m['cores']}; torch {m['torch']}, python {m['python']}, "
        f"torch threads {args.threads}  ",
        f"Load average (1/5/15 min) before: {load[0]}, after: {load[1]}  ",
        f"Iterations: reference {args.ref_iters}, ours {args.iters} timed after {args.warmup} warm-up  ",
        "", markdown(results, gemm, args), "", f"{END} {m['kind']} -->"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="paper,cpu", help=f"comma-separated, from {', '.join(SIZES)}")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--backbones", default="bigru",
                   help="comma-separated: bigru, stgcn, transformer (the reference runs for bigru only)")
    p.add_argument("--iters", type=int, default=3, help="timed iterations of our step")
    p.add_argument("--ref-iters", type=int, default=2, help="timed iterations of the reference step")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default 0: the cores this process may use, as pcm3 runs)")
    p.add_argument("--profile", action="store_true", help="print a torch.profiler table per variant")
    p.add_argument("--write", type=Path, help="put the results block into this Markdown file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads <= 0:
        from pcm3.engine.threads import available_cores

        args.threads = available_cores().cores
    torch.set_num_threads(args.threads)
    if args.worker:
        job = json.loads(args.worker)
        result = gemm_throughput(job["size"]) if job["variant"] == "gemm" else run_variant(**job)
        print(json.dumps(result))
        return
    args.sizes = args.sizes.split(",")
    args.backbones = args.backbones.split(",")
    print(f"machine: {machine()['capability']}", file=sys.stderr, flush=True)
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    results, gemm = [], {}
    for size in args.sizes:
        gemm[size] = run_subprocess(args, {"size": size, "variant": "gemm"})
        for backbone, variant in ((b, v) for b in args.backbones for v in args.variants.split(",")):
            if variant == "reference" and backbone != "bigru":
                continue  # the official PCM3 step exists for the BiGRU only
            iters = args.ref_iters if variant == "reference" else args.iters
            job = {"size": size, "variant": variant, "iters": iters, "warmup": args.warmup,
                   "profile": args.profile, "backbone": backbone}
            r = run_subprocess(args, job)
            print(f"{backbone} {size} {variant}: step {r['step_s']:.3f} s {r['times']}, "
                  f"views {r['views_s']:.4f} s, "
                  f"peak {r['peak_rss_mb']:.0f} MB, losses finite {r['finite']}", file=sys.stderr, flush=True)
            if args.profile:
                print(r["profile"], file=sys.stderr)
            results.append(r)
    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    block = report(results, gemm, args, (load_before, load_after))
    print(block)
    if args.write:
        text = args.write.read_text() if args.write.exists() else "# Benchmarks\n"
        args.write.write_text(write_block(text, block, machine()["kind"]))


if __name__ == "__main__":
    main()
