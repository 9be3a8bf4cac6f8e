"""``pcm3 bench``: pre-train (or load) an encoder, or each of a list of them, and run the
downstream tasks, with the reference encoders, into one table; exit status 1 when an entry or a
task failed (the others' results are written)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_OUT = Path("runs/bench")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="pre-train, then run every downstream task into one table")
    p.add_argument("--config", type=Path, help="bench YAML (e.g. configs/bench_quick.yaml); "
                                                 "without it the built-in defaults")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. seed=1 tasks.linear.epochs=10 pretrain.overrides.epochs=5")
    p.set_defaults(func=bench)


def bench(args: argparse.Namespace) -> int:
    from pcm3.config import load_config
    from pcm3.engine.run_lock import RunFolderLock
    from pcm3.tasks.bench import BenchConfig, run_bench

    cfg = load_config(BenchConfig, args.config, args.overrides)
    with RunFolderLock(args.out):  # one process per bench folder
        rows = run_bench(cfg, args.out)
    print()
    print((args.out / "results.md").read_text(), end="")
    print(f"\nresults: {args.out / 'results.json'}, {args.out / 'results.csv'}, {args.out / 'results.md'}"
          f"\nprovenance: {args.out / 'provenance.json'}")
    pictures = sorted((args.out / "pictures").glob("*.png")) if cfg.pictures else []
    if pictures:
        print("pictures: " + ", ".join(str(p) for p in pictures))
    failed = [f"{r['encoder']}/{r['task']}: {r['error']}" for r in rows if r["error"]]
    if failed:  # the others' results are written; the run still did not do all it was asked
        print(f"error: {len(failed)} failed (the error column of results.md):\n  " + "\n  ".join(failed),
              file=sys.stderr)
        return 1
    return 0
