"""The PCM3 / PCM3++ ablation rows (survey Tables 3-4) at a CPU budget, on the built-in data.

Each row adds one part to the row above; every row is pre-trained on the built-in tuning split
(``tune/train``: two thirds of the ``xsub/train`` subjects, see ``tune_small_data.py``) with the
same budget and seed, then scored on ``tune/val`` (1-NN, logistic regression) and on built-in
untrimmed detection (``xsub/val`` recordings, window features, mAP@0.5)::

    python benchmarks/ablation_pcm3pp.py --epochs 40 --lanes 2 [--seed S --runs runs/ablation_sS]

Rows run in ``--lanes`` parallel single-thread processes (the post-distillation row waits for
the clip row it starts from).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
NO_MASK = ["loss.masked=0", "loss.reconstructed=0", "loss.reconstruction=0"]
MASK_ON = ["loss.masked=1", "loss.reconstructed=1", "loss.reconstruction=40"]  # the quick config has them off
NO_PROMPTS = ["model.input_prompts=false", "model.task_prompts=false"]
ROWS: list[tuple[str, str, list[str]]] = [
    ("contrast", "contrastive only (query/key + mixing + relational KL)", [*NO_MASK, *NO_PROMPTS]),
    ("pairs", "+ novel positive pairs (masked, reconstructed views; masked MSE)",
     [*MASK_ON, "loss.semantic_guidance=false", *NO_PROMPTS]),
    ("guidance", "+ semantic guidance (contrast gradients into the decoder)", [*MASK_ON, *NO_PROMPTS]),
    ("prompts", "+ prompts (= PCM3)", MASK_ON),
    ("clip", "+ clip contrast (= PCM3++)", [*MASK_ON, "method=pcm3pp"]),
]


def run(cmd: list[str], log: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, env=env)


def pretrain_row(args: argparse.Namespace, name: str, overrides: list[str]) -> None:
    run([sys.executable, str(HERE / "tune_small_data.py"), "--store", args.store, "--name", name,
         "--config", args.config, "--runs", str(args.runs), f"epochs={args.epochs}", f"seed={args.seed}",
         *overrides],
        args.runs / f"{name}.log")


def detection(args: argparse.Namespace, name: str) -> float:
    out = args.runs / f"{name}_detection.json"
    cmd = [sys.executable, "-m", "pcm3", "eval", "detection", "--encoder",
           str(args.runs / name / "checkpoints" / "last.pt"), "--data", f"{args.store}/untrimmed", "--json"]
    with open(out, "w") as fh:
        subprocess.run(cmd, check=True, stdout=fh, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.read_text().strip().splitlines()[-1])["map@0.5"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="data/builtin")
    p.add_argument("--config", default="configs/pcm3_quick.yaml")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--distill-epochs", type=int, default=10)
    p.add_argument("--lanes", type=int, default=2)
    p.add_argument("--seed", type=int, default=42, help="pre-training seed (detection keeps seed 0)")
    p.add_argument("--runs", type=Path, default=Path("runs/ablation"))
    args = p.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(HERE))
    from tune_small_data import tuning_store  # built once, before the parallel lanes

    tuning_store(Path(args.store), args.runs / f"{Path(args.store).name}_tune")
    with ThreadPoolExecutor(args.lanes) as pool:
        list(pool.map(lambda row: pretrain_row(args, row[0], row[2]), ROWS))
    clip_ckpt = args.runs / "clip" / "checkpoints" / "last.pt"
    pretrain_row(args, "distill", [*MASK_ON, "method=pcm3pp", "stage=post_distill", f"init={clip_ckpt}",
                                   f"epochs={args.distill_epochs}"])
    results = {json.loads(line)["name"]: json.loads(line)
               for line in (args.runs / "results.jsonl").read_text().splitlines()}
    rows = [*ROWS, ("distill", f"+ post-distillation ({args.distill_epochs} epochs, KL only)", [])]
    lines = ["| row | 1-NN | logistic | detection mAP@0.5 | minutes |", "|---|---|---|---|---|"]
    for name, label, _ in rows:
        r = results[name]
        knn, logistic = r["pretrained"]
        lines.append(f"| {label} | {knn} | {logistic} | {detection(args, name):.1f} | {r['minutes']} |")
    ref = results["contrast"]
    lines.append(f"| random-init | {ref['random-init'][0]} | {ref['random-init'][1]} | | |")
    lines.append(f"| raw coordinates | {ref['raw'][0]} | {ref['raw'][1]} | | |")
    table = "\n".join(lines)
    (args.runs / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
