"""``pcm3 quickstart``: the README's main job on the built-in dataset.

What it does today: generates the built-in dataset (when absent), summarises it and renders
a trimmed sample and an untrimmed recording as animations. Pre-training followed by the
benchmark joins this command when the benchmark lands; until then it says so.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_DATA = Path("data/builtin")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quickstart", help="the main job on the built-in dataset")
    p.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help=f"where the built-in dataset is kept (default {DEFAULT_DATA})")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=quickstart)


def quickstart(args: argparse.Namespace) -> int:
    from pcm3.commands.data import store_summary
    from pcm3.data.store import open_store
    from pcm3.data.synthetic import synthesize_store
    from pcm3.viz.skeleton_animation import show_store_sample

    start = time.perf_counter()
    if (args.data / "meta.json").exists():
        store = open_store(args.data)
        print(f"[1/3] built-in dataset found at {args.data} ({len(store)} samples)")
    else:
        print(f"[1/3] generating the built-in dataset at {args.data} ...")
        store = synthesize_store(args.data, seed=args.seed)
    summary = store_summary(args.data)
    splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
    print(f"      {summary['num_samples']} clips, {summary['num_classes']} classes, layout "
          f"{summary['layout']}, splits: {splits}; {summary.get('num_sequences', 0)} untrimmed "
          f"recordings with {summary.get('num_intervals', 0)} action intervals")
    args.out.mkdir(parents=True, exist_ok=True)
    print("[2/3] rendering a sample and an untrimmed recording ...")
    clip = show_store_sample(args.data, 0, args.out / "sample_0.gif")
    recording = show_store_sample(args.data / "untrimmed", 0, args.out / "recording_0.gif")
    print(f"      {clip}\n      {recording}")
    print("[3/3] nothing was trained or evaluated: the multi-task benchmark is not built yet, so the\n"
          "      quickstart stops here. Pre-training works on its own:\n"
          "      pcm3 pretrain --config configs/pcm3_quick.yaml --out runs/pcm3_quick")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
