"""The two readings of PCM3++'s clip branch, side by side on the tuning splits.

``ours``: the clip cut from the query view and contrasted with an extra key pass over that view,
encoded cropped (``clip.source=query clip.path=crop``). ``paper``: the clip cut from the key view
x_k, contrasted with the key embedding the sequence pairs already use, masked in place
(``clip.source=key clip.path=in_place``). Each is the ablation's PCM3++ row
(``ablation_pcm3pp.py``: the quick architecture, 64-frame views, every PCM3 term on, 40 epochs)
pre-trained on a store's tuning split per seed, then scored on its tuning validation split
(1-NN, logistic regression; built-in: ``tune/val``; NW-UCLA: view 1 -> view 2)::

    python benchmarks/clip_readings.py --stores data/builtin data/nwucla --seeds 42 43 44 \\
        --runs runs/clip_readings --write benchmarks/README.md

Finished runs are reused (a rerun only trains what is missing). Rows run in ``--lanes``
parallel single-thread processes. Accuracy only: the runs may share the machine, so no timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ablation_pcm3pp import MASK_ON, VIEW  # noqa: E402  (the ablation's PCM3++ row settings)
from machine_blocks import machine, write_marked  # noqa: E402

READINGS = {
    "ours": ["clip.source=query", "clip.path=crop"],
    "paper": ["clip.source=key", "clip.path=in_place"],
}
START, END = "<!-- clip-readings:start -->", "<!-- clip-readings:end -->"


def run_one(args: argparse.Namespace, store: str, reading: str, seed: int) -> None:
    runs = args.runs / Path(store).name / f"s{seed}"
    name = f"clip_{reading}"
    if (runs / "results.jsonl").exists() and any(json.loads(line)["name"] == name for line in
                                                 (runs / "results.jsonl").read_text().splitlines()):
        return
    runs.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(HERE / "tune_small_data.py"), "--store", store, "--name", name,
           "--config", args.config, "--runs", str(runs), f"epochs={args.epochs}", f"seed={seed}",
           *VIEW, *MASK_ON, "method=pcm3pp", *READINGS[reading]]
    with open(runs / f"{name}.log", "w") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})


def table(args: argparse.Namespace) -> str:
    def cell(values: list[float]) -> str:
        return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}" if len(values) > 1 else (
            f"{values[0]:.1f}" if values else "")

    lines = [START, "", machine()["capability"], "",
             f"`python benchmarks/clip_readings.py --epochs {args.epochs} --seeds "
             f"{' '.join(map(str, args.seeds))}`: mean ± std over pre-training seeds.", "",
             "| store | reading | 1-NN | logistic | runs |", "|---|---|---|---|---|"]
    for store in args.stores:
        for reading in READINGS:
            found = []
            for seed in args.seeds:
                path = args.runs / Path(store).name / f"s{seed}" / "results.jsonl"
                rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
                found += [r for r in rows if r["name"] == f"clip_{reading}"]
            knn = [r["pretrained"][0] for r in found]
            logistic = [r["pretrained"][1] for r in found]
            label = f"{reading} (`{' '.join(READINGS[reading])}`)"
            lines.append(f"| {Path(store).name} | {label} | {cell(knn)} | {cell(logistic)} | {len(found)} |")
    return "\n".join([*lines, "", END])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stores", nargs="+", default=["data/builtin", "data/nwucla"])
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    p.add_argument("--config", default="configs/pcm3_quick.yaml")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lanes", type=int, default=2)
    p.add_argument("--runs", type=Path, default=Path("runs/clip_readings"))
    p.add_argument("--write", type=Path, help="put the table into this Markdown file")
    p.add_argument("--table-only", action="store_true", help="print the table of finished runs")
    args = p.parse_args()
    if not args.table_only:
        from tune_small_data import tuning_store  # built once per store, before the parallel lanes

        for store in args.stores:
            tuning_store(Path(store), args.runs / f"{Path(store).name}_tune")
        jobs = [(store, reading, seed) for seed in args.seeds for store in args.stores
                for reading in READINGS]
        with ThreadPoolExecutor(args.lanes) as pool:
            list(pool.map(lambda job: run_one(args, *job), jobs))
    block = table(args)
    print(block)
    if args.write:
        write_marked(args.write, START, END, block)


if __name__ == "__main__":
    main()
