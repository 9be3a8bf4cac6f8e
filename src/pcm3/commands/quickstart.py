"""``pcm3 quickstart``: the README's main job on the built-in dataset.

Generates the built-in dataset when absent, pre-trains PCM3 with the CPU-sized quick config,
runs the benchmark of ``configs/quickstart.yaml`` (every task the built-in data supports,
detection included) for the pre-trained encoder and the two references (``random-init``,
``raw``), then prints the table and where the pictures are. A rerun with the same ``--out``
reuses every finished stage.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pcm3.errors import Pcm3Error

DEFAULT_DATA = Path("data/builtin")
QUICKSTART_CONFIG = Path("configs/quickstart.yaml")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quickstart", help="the main job: built-in data, PCM3 pre-training, the benchmark")
    p.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="run folder")
    p.add_argument("--config", type=Path, default=QUICKSTART_CONFIG,
                   help=f"bench config (default {QUICKSTART_CONFIG}, relative to the pcm3 checkout)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="bench config overrides")
    p.set_defaults(func=quickstart)


def quickstart(args: argparse.Namespace) -> int:
    from pcm3.commands.data import store_summary
    from pcm3.config import load_config
    from pcm3.engine.pretrain import resolve_store
    from pcm3.engine.run_lock import RunFolderLock
    from pcm3.tasks.bench import BenchConfig, run_bench
    from pcm3.viz.skeleton_animation import show_store_sample

    start = time.perf_counter()
    if not args.config.exists():
        raise Pcm3Error(f"{args.config} not found: run the quickstart from the pcm3 checkout "
                        "(make quickstart), or pass --config")
    cfg = load_config(BenchConfig, args.config, args.overrides)
    with RunFolderLock(args.out):  # one process per run folder
        print("[1/3] built-in dataset")
        store = resolve_store(cfg.data)
        summary = store_summary(store.path)
        splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
        print(f"      {summary['num_samples']} clips, {summary['num_classes']} classes, layout "
              f"{summary['layout']}, splits: {splits}")
        args.out.mkdir(parents=True, exist_ok=True)
        clip = show_store_sample(store.path, 0, args.out / "sample_0.gif")
        print(f"      a sample clip: {clip}")
        print("[2/3] pre-training + benchmark (pcm3 bench; a rerun reuses finished stages)")
        run_bench(cfg, args.out, log=lambda line: print("      " + line, flush=True))
        print("[3/3] results (final-epoch numbers; random-init and raw are the reference rows)\n")
        budget_line = pretraining_budget_line(args.out / "provenance.json")
        if budget_line:
            print(budget_line + "\n")
        print((args.out / "results.md").read_text(), end="")
        pictures = sorted((args.out / "pictures").glob("*.png"))
        print(f"\nresults: {args.out / 'results.md'} (also .csv, .json; provenance.json)")
        if pictures:
            print("pictures: " + ", ".join(str(p) for p in pictures))
        print(f"done in {(time.perf_counter() - start) / 60:.1f} min")
    return 0


def pretraining_budget_line(provenance: Path) -> str | None:
    """What the pre-training time budget chose (``None`` without a budget or provenance)."""
    if not provenance.exists():
        return None
    summary = (json.loads(provenance.read_text()).get("pretrain") or {}).get("summary") or {}
    budget = summary.get("time_budget")
    if not budget:
        return None
    shortened = budget["epochs"] < budget["configured_epochs"]
    note = (" (shortened to fit this machine: results come from a shorter run than on faster hardware)"
            if shortened else "")
    return (f"pre-training: {budget['epochs']} of {budget['configured_epochs']} epochs in a "
            f"{budget['minutes']:g}-minute budget, {budget['step_seconds']:.3f} s per step{note}")
