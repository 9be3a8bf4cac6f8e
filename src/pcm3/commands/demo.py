"""``pcm3 demo``: a video with its skeleton and the predicted action per frame drawn over it."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from pcm3.layout_mapping import ABSENT_FILLS

    p = sub.add_parser("demo", help="draw the skeleton and the predicted action per frame over a video "
                                    "(docs/video.md)")
    p.add_argument("video", type=Path, metavar="VIDEO", help="a video file (.mp4, .avi, ...)")
    p.add_argument("--encoder", required=True, metavar="ENC",
                   help="a pcm3 checkpoint (.pt) or exported encoder (.safetensors)")
    p.add_argument("--classifier", required=True, type=Path, metavar="HEAD",
                   help="a detection head written by pcm3 eval detection --save-head, for this encoder")
    p.add_argument("--out", required=True, type=Path, metavar="DEMO.gif|DEMO.mp4")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--max-frames", type=int, default=300,
                   help="draw at most this many evenly spaced frames (default 300)")
    p.add_argument("--max-width", type=int, default=640, help="scale wider frames down to this width")
    p.add_argument("--min-visibility", type=float, default=0.5, metavar="V",
                   help="a joint seen with visibility below V is missing (default 0.5)")
    p.add_argument("--absent-joints", choices=ABSENT_FILLS, default="nearest",
                   help="joints the encoder's layout has and the pose estimator lacks: nearest or zero")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=demo)


def demo(args: argparse.Namespace) -> int:
    from pcm3.data.pose.estimator import VideoPoseOptions
    from pcm3.demo import run_demo
    from pcm3.engine.runtime import resolve_runtime
    from pcm3.errors import Pcm3Error

    if args.max_frames < 1 or args.max_width < 16:
        raise Pcm3Error("--max-frames must be at least 1 and --max-width at least 16")
    options = VideoPoseOptions(min_visibility=args.min_visibility, progress=not args.no_progress)
    result = run_demo(args.video, args.encoder, args.classifier, args.out,
                      device=resolve_runtime(args.device).device, options=options, absent=args.absent_joints,
                      max_frames=args.max_frames, max_width=args.max_width)
    counts = Counter(result.labels)
    summary = ", ".join(f"{name} {n}" for name, n in counts.most_common())
    print(f"{len(result.labels)} frames ({summary}) -> {result.out} ({len(result.drawn)} frames drawn)")
    return 0
