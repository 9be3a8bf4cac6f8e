"""Speed of one forward + backward + SGD step of the graph and Transformer backbones: ours vs the
reference formulations of their public code, on this machine.

    .venv/bin/python benchmarks/backbone_speed.py --sizes paper,cpu --write benchmarks/README.md
    .venv/bin/python benchmarks/backbone_speed.py --sizes tiny --iters 1 --ref-iters 1     # smoke run

Workloads: ``stgcn/full`` (``forward_features`` of whole clips), ``transformer/full`` (all tokens: linear
probe and fine-tuning) and ``transformer/masked90`` (MAMP pre-training's encoder pass: 10 % of the tokens
of each person kept at random, ``forward_tokens``). Variants, each in a fresh subprocess (so
``ru_maxrss`` is that variant's peak): ``reference`` (``reference_stgcn.py`` / ``reference_mamp_encoder.py``,
fp32), ``fp32`` (ours), and ``reference_bf16`` / ``bf16`` (under bf16 autocast; run only where the CPU has
native bf16, ``avx512_bf16`` or ``amx_bf16``, unless ``--force-bf16``). Equal configuration throughout:
same widths, batch, frames, NTU 25-joint layout, 2 persons, same loss (mean square of the output).
FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one step of each variant (attention
through PyTorch's unfused path, which the counter can see).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

SIZES = {  # per backbone: batch, frames, options; every other option is the backbone's default (paper)
    "paper": {"stgcn": {"batch": 128, "frames": 50, "options": {}},  # SkeletonCLR / AimCLR: 50-frame clips
              # batch 8 for all tokens: the reference's explicit attention keeps 8 x (16, 8, 750, 750) floats
              "transformer": {"batch": 8, "frames": 120, "options": {}, "masked_batch": 32}},
    "cpu": {"stgcn": {"batch": 64, "frames": 32, "options": {}},
            "transformer": {"batch": 32, "frames": 32, "masked_batch": 64,
                            "options": {"embed_dim": 128, "depth": 4, "num_heads": 4}}},
    "tiny": {"stgcn": {"batch": 4, "frames": 16, "options": {"base_channels": 4, "out_channels": 8}},
             "transformer": {"batch": 4, "frames": 16, "masked_batch": 4,
                             "options": {"embed_dim": 16, "depth": 2, "num_heads": 2, "max_frames": 32}}},
}
WORKLOADS = {"stgcn": ("full",), "transformer": ("full", "masked90")}
VARIANTS = ("reference", "fp32", "reference_bf16", "bf16")
PERSONS, CHANNELS = 2, 3
START, END = "<!-- backbone-speed:start -->", "<!-- backbone-speed:end -->"


def native_bf16() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return " avx512_bf16" in flags or " amx_bf16" in flags


def build(backbone: str, variant: str, size: str) -> tuple[torch.nn.Module, dict]:
    """The model of ``variant`` (ours or the reference) at ``size``, and its size spec."""
    from reference_mamp_encoder import ReferenceMAMPEncoder
    from reference_stgcn import ReferenceSTGCN

    from pcm3.layouts import NTU25
    from pcm3.models import STGCN, SkeletonTransformer, STGCNOptions, TransformerOptions
    from pcm3.models.graph import component_centres

    spec = SIZES[size][backbone]
    if backbone == "stgcn":
        o = STGCNOptions(**spec["options"])
        if variant.startswith("reference"):
            centre = component_centres(NTU25)[0]
            return ReferenceSTGCN(NTU25, CHANNELS, centre, o.base_channels, o.out_channels, o.temporal_kernel,
                                  o.dropout), spec
        return STGCN(NTU25, PERSONS, CHANNELS, **spec["options"]), spec
    frames = -(-spec["frames"] // 4) * 4
    options = {"max_frames": max(120, frames), **spec["options"]}
    o = TransformerOptions(**options)
    if variant.startswith("reference"):
        return ReferenceMAMPEncoder(CHANNELS, NTU25.num_joints, frames, o.embed_dim, o.depth, o.num_heads,
                                    o.mlp_ratio, o.patch_frames, o.qkv_bias), {**spec, "frames": frames}
    return SkeletonTransformer(NTU25, PERSONS, CHANNELS, **options), {**spec, "frames": frames}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_job(size: str, backbone: str, workload: str, variant: str, iters: int, warmup: int) -> dict:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model, spec = build(backbone, variant, size)
    model.train()
    masked = workload == "masked90"
    batch = spec["masked_batch"] if masked else spec["batch"]
    x = torch.randn(batch, CHANNELS, spec["frames"], 25, PERSONS)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    reference = variant.startswith("reference")
    bf16 = variant.endswith("bf16")
    tokens = spec["frames"] // 4 * 25

    def forward() -> torch.Tensor:
        if not masked:
            return model(x) if reference else model.forward_features(x)
        keep = torch.rand(batch * PERSONS, tokens).argsort(dim=1)[:, : tokens // 10]  # as MAMP: sorted noise
        return model.encode_kept(x, keep) if reference else model.forward_tokens(x, keep_index=keep)

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = forward().float().square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel([SDPBackend.MATH]):  # the counter does not see inside the fused CPU kernel
        step()
    base_rss = _rss_mb()
    times, loss = [], 0.0
    for i in range(warmup + iters):
        tick = time.perf_counter()
        loss = step()
        if i >= warmup:
            times.append(time.perf_counter() - tick)
    return {"size": size, "backbone": backbone, "workload": workload, "variant": variant, "batch": batch,
            "frames": spec["frames"], "step_s": statistics.median(times), "times": times,
            "flops": counter.get_total_flops(), "base_rss_mb": base_rss,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "finite": bool(torch.isfinite(torch.tensor(loss)))}


def gemm_throughput(repeats: int = 7, seconds: float = 0.2) -> float:
    """Median fp32 GFLOP/s of a ``(8192, 256) x (256, 1024)`` matmul (a Transformer MLP's shape)."""
    a, w = torch.randn(8192, 256), torch.randn(256, 1024)
    tick = time.perf_counter()
    torch.matmul(a, w)
    inner = max(1, int(seconds / (time.perf_counter() - tick)))
    runs = []
    for _ in range(repeats):
        tick = time.perf_counter()
        for _ in range(inner):
            torch.matmul(a, w)
        runs.append(2 * 8192 * 256 * 1024 * inner / (time.perf_counter() - tick) / 1e9)
    return statistics.median(runs)


def markdown(results: list[dict], gemm: float) -> str:
    """One row per run; the speed-up is against the reference of the same precision when it ran,
    else against the fp32 reference, of the same size, backbone and workload."""
    lines = ["| size | backbone / workload | variant | batch x frames | step s (median) | samples/s "
             "| speed-up vs reference | peak RSS MB (step working set) | GFLOP/s | % of fp32 GEMM |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        group = {q["variant"]: q for q in results
                 if (q["size"], q["backbone"], q["workload"]) == (r["size"], r["backbone"], r["workload"])}
        ref = group.get("reference_bf16" if r["variant"] == "bf16" else "reference") or group.get("reference")
        speed = "–" if ref is None or r["variant"].startswith("reference") else \
            f"{ref['step_s'] / r['step_s']:.2f}x vs {ref['variant']}"
        gflops = r["flops"] / r["step_s"] / 1e9
        lines.append(
            f"| {r['size']} | {r['backbone']} / {r['workload']} | {r['variant']} "
            f"| {r['batch']} x {r['frames']} | {r['step_s']:.3f} | {r['batch'] / r['step_s']:.1f} | {speed} "
            f"| {r['peak_rss_mb']:.0f} ({r['peak_rss_mb'] - r['base_rss_mb']:.0f}) | {gflops:.1f} "
            f"| {100 * gflops / gemm:.0f} % |")
    return "\n".join(lines)


def run_subprocess(job: dict, threads: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job),
           "--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker {job} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="paper,cpu", help=f"comma-separated, from {', '.join(SIZES)}")
    p.add_argument("--backbones", default="stgcn,transformer")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--iters", type=int, default=3, help="timed steps of ours")
    p.add_argument("--ref-iters", type=int, default=2, help="timed steps of the reference")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--force-bf16", action="store_true", help="run the bf16 variants without native bf16")
    p.add_argument("--write", type=Path, help="put the results block into this Markdown file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps({"gemm": gemm_throughput()} if job == "gemm" else run_job(**job)))
        return
    from pretrain_speed import machine

    bf16 = args.force_bf16 or native_bf16()
    variants = [v for v in args.variants.split(",") if bf16 or not v.endswith("bf16")]
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    gemm = run_subprocess("gemm", args.threads)["gemm"]
    results = []
    for size in args.sizes.split(","):
        for backbone in args.backbones.split(","):
            for workload in WORKLOADS[backbone]:
                for variant in variants:
                    iters = args.ref_iters if variant.startswith("reference") else args.iters
                    job = {"size": size, "backbone": backbone, "workload": workload, "variant": variant,
                           "iters": iters, "warmup": args.warmup}
                    r = run_subprocess(job, args.threads)
                    print(f"{size} {backbone}/{workload} {variant}: {r['step_s']:.3f} s {r['times']}, "
                          f"peak {r['peak_rss_mb']:.0f} MB, finite {r['finite']}", file=sys.stderr,
                          flush=True)
                    results.append(r)
    Path("runs").mkdir(exist_ok=True)
    Path("runs/backbone_speed_results.json").write_text(json.dumps(results))  # kept if the report fails
    m = machine()
    block = "\n".join([
        START, f"Command: `python benchmarks/backbone_speed.py {' '.join(sys.argv[1:])}`  ",
        f"Date: {datetime.datetime.now().isoformat(timespec='minutes')}  ",
        f"Machine: {m['capability']}; {m['cores']}; torch {m['torch']}, "
        f"torch threads {args.threads}  ",
        f"Load average (1/5/15 min) before: {load_before}, after: "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}  ",
        f"Iterations: reference {args.ref_iters}, ours {args.iters} timed after {args.warmup} warm-up; "
        f"fp32 GEMM {gemm:.0f} GFLOP/s  ", "", markdown(results, gemm), "", END])
    print(block)
    if args.write:
        text = args.write.read_text() if args.write.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
        head, _, rest = text.partition(START)
        args.write.write_text(head + block + rest.partition(END)[2])


if __name__ == "__main__":
    main()
