"""Speed of the way from a video to features: video -> skeleton frames per second (ffmpeg
decoding + MediaPipe Pose, and decoding alone), and ``Embedder.encode`` clips per second for each
registered backbone (one feature per clip, and per-frame features), and the encoder's sequence
feature on ready-made evaluation views in PyTorch and, exported with ``pcm3 export --onnx``, in
onnxruntime (skipped without the ``onnx`` extra)::

    .venv/bin/python benchmarks/video_speed.py --write benchmarks/README.md      # alone on the machine
    .venv/bin/python benchmarks/video_speed.py --frames 30 --clips 16             # smoke run

The video is made from scikit-image's astronaut photograph, moved and scaled over the frames
(``--size`` W x H), so the pose estimator tracks a real person. The encoders are randomly
initialised at the size of ``--config`` (``model.backbone`` set to each registered backbone) on
NTU's layout, 2 persons, clips of ``--clip-frames`` frames. Needs ``pip install 'pcm3[video]'``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pcm3.config import from_dict, load_yaml
from pcm3.data.pose.estimator import VideoPoseOptions
from pcm3.data.pose.frames import open_video, panned_frames, write_video
from pcm3.data.pose.video_skeleton import estimate_video
from pcm3.embedding import Embedder
from pcm3.engine.config import PretrainConfig
from pcm3.layouts import NTU25
from pcm3.models.registry import BACKBONES, known_backbones
from pcm3.tasks.encoders import random_encoder

START, END = "<!-- video-speed:start -->", "<!-- video-speed:end -->"
_T0 = time.perf_counter()


def progress(stage: str) -> None:
    """One line on stderr per stage, with the time since start: a slow stage shows where it is."""
    print(f"[{time.perf_counter() - _T0:7.1f} s] {stage}", file=sys.stderr, flush=True)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def video_rates(frames: int, size: tuple[int, int], repeats: int) -> dict[str, float]:
    """Frames per second of decoding alone and of decoding + pose (best of ``repeats``)."""
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "astronaut.mp4", panned_frames(data.astronaut(), frames, size), fps=30)
        decode, pose, found = [], [], 0
        for r in range(repeats):
            progress(f"video: decoding {frames} frames (repeat {r + 1}/{repeats})")
            start = time.perf_counter()
            count = sum(1 for _ in open_video(path).frames)
            decode.append(count / (time.perf_counter() - start))
            progress(f"video: decoding + MediaPipe Pose (repeat {r + 1}/{repeats})")
            start = time.perf_counter()
            skeleton = estimate_video(path, VideoPoseOptions(progress=False))
            pose.append(frames / (time.perf_counter() - start))
            found = int(skeleton.person.sum())
    return {"decode": max(decode), "pose": max(pose), "found": found}


def config_for(config: Path, backbone: str) -> PretrainConfig:
    """``config`` with ``model.backbone = backbone``: its block of options for that backbone if it
    has one (else the defaults), its blocks for other backbones dropped (a config may hold only the
    block of its own backbone)."""
    data = load_yaml(config)
    model = {k: v for k, v in (data.get("model") or {}).items()
             if k not in known_backbones() or k == backbone}
    data["model"] = {**model, "backbone": backbone}
    return from_dict(PretrainConfig, data)


def embed_rates(config: Path, backbones: list[str], clips: int, dense_clips: int, clip_frames: int,
                batch: int) -> list[dict[str, float | str]]:
    """Clips per second of ``encode`` for each backbone: one feature per clip on ``clips`` clips,
    per-frame features on the first ``dense_clips`` (the detection task's window features: one
    window per frame, ``clip_frames`` times the work)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(clips, 2, clip_frames, NTU25.num_joints, 3)).cumsum(axis=2).astype(np.float32) * 0.01
    rows = []
    for name in backbones:
        cfg = config_for(config, name)
        embedder = Embedder(random_encoder(cfg, NTU25, 3, 2), batch_size=batch)
        row: dict[str, float | str] = {"backbone": name, "dim": embedder.feature_dim,
                                       "view": embedder.loaded.view_frames}
        for dense, n in ((False, clips), (True, dense_clips)):
            progress(f"{name}: encode {n} clips, {'per-frame features' if dense else 'one feature each'}")
            embedder.encode(x[: 1 if dense else batch], dense=dense, preprocess=False)  # warm-up
            start = time.perf_counter()
            embedder.encode(x[:n], dense=dense, preprocess=False)
            row["dense" if dense else "clip"] = n / (time.perf_counter() - start)
        progress(f"{name}: pre-processing and evaluation views")
        start = time.perf_counter()
        embedder.prepare(x)
        row["preprocess"] = clips / (time.perf_counter() - start)
        row.update(view_rates(embedder, clips, batch))
        rows.append(row)
    return rows


def view_rates(embedder: Embedder, clips: int, batch: int) -> dict[str, float | None]:
    """Clips per second of the sequence feature on evaluation views ``(batch, C, view, V, M)``:
    PyTorch, and onnxruntime on the ONNX export (None without the onnx extra)."""
    spec = embedder.loaded.spec
    x = torch.randn(batch, spec.in_channels, spec.view_frames, spec.layout.num_joints, spec.num_persons)
    lengths = torch.full((batch,), spec.view_frames, dtype=torch.long)
    calls = max(1, clips // batch)
    with torch.no_grad():
        embedder.module.forward_features(x, lengths)  # warm-up
        start = time.perf_counter()
        for _ in range(calls):
            embedder.module.forward_features(x, lengths)
        rates: dict[str, float | None] = {"torch_view": calls * batch / (time.perf_counter() - start),
                                          "onnx_view": None}
    try:
        import onnxruntime as ort

        from pcm3.models.onnx_export import export_onnx
    except ImportError:
        return rates
    progress("onnxruntime on the ONNX export")
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(embedder.module, Path(tmp) / "encoder.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feeds = {"x": x.numpy(), "lengths": lengths.numpy()}
        session.run(None, feeds)  # warm-up
        start = time.perf_counter()
        for _ in range(calls):
            session.run(None, feeds)
        rates["onnx_view"] = calls * batch / (time.perf_counter() - start)
    return rates


def markdown(video: dict[str, float], rows: list[dict], args: argparse.Namespace,
             load: tuple[str, str]) -> str:
    w, h = args.size
    lines = [START, "",
             f"{cpu_name()}, {os.cpu_count()} CPUs, torch threads {args.threads}; load average (1, 5, "
             f"15 min) before: {load[0]}, after: {load[1]}.", "",
             f"Video -> skeleton ({args.frames} frames of {w}x{h}, MediaPipe Pose 0.10.14, model "
             f"complexity 1, the tracker's start-up included; person found in {video['found']} of "
             f"{args.frames} frames): **{video['pose']:.1f} frames/s** (decoding alone "
             f"{video['decode']:.0f} frames/s).", "",
             f"`Embedder.encode`, {args.clips} clips of {args.clip_frames} frames ({args.dense_clips} clips "
             f"for per-frame features), NTU layout, 2 persons, batch {args.batch}, sizes of "
             f"`{args.config}`. Per-frame features use the detection task's default `features=window`: "
             "one window per frame (`features=sequence` is one pass for a causal encoder):", "",
             "| backbone | D | view frames | clips/s (one feature per clip) | clips/s (per frame) | "
             "clips/s (pre-processing alone) | views/s PyTorch | views/s onnxruntime |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        onnx = "–" if r.get("onnx_view") is None else f"{r['onnx_view']:.1f}"
        lines.append(f"| {r['backbone']} | {r['dim']} | {r['view']} | {r['clip']:.1f} | {r['dense']:.1f} | "
                     f"{r['preprocess']:.0f} | {r['torch_view']:.1f} | {onnx} |")
    return "\n".join([*lines, "", END])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=300, help="frames of the test video")
    p.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--config", type=Path, default=Path("configs/pcm3_ntu60_xsub.yaml"))
    p.add_argument("--backbones", default=",".join(sorted(BACKBONES)))
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--dense-clips", type=int, default=8, help="clips for the per-frame features")
    p.add_argument("--clip-frames", type=int, default=100)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--write", type=Path, help="put the results block into this Markdown file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    video = video_rates(args.frames, tuple(args.size), args.repeats)
    rows = embed_rates(args.config, args.backbones.split(","), args.clips, args.dense_clips,
                       args.clip_frames, args.batch)
    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    progress("done")
    block = markdown(video, rows, args, (load_before, load_after))
    print(block)
    if args.write:
        from machine_blocks import write_marked  # the scripts' folder is on sys.path when run

        write_marked(args.write, START, END, block)


if __name__ == "__main__":
    main()
