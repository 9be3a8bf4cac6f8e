"""PKU-MMD Part I detection: the PCM3 authors' training options against our defaults, under both
metrics papers quote.

    .venv/bin/python benchmarks/detection_pkummd.py --encoder runs/quickstart/pretrain/checkpoints/last.pt \\
        --seeds 0,1,2 --write benchmarks/README.md
    .venv/bin/python benchmarks/detection_pkummd.py --max-sequences 2 --seeds 0 --epochs 2   # smoke run

Data: ``../shared/data/pku_mmd_part1`` converted with the ``pku-mmd`` reader into a temporary
store (``--pku``). Encoder: ``--encoder`` (a pcm3 checkpoint or exported encoder) or, by
default, a random initialisation (seed 0) of the architecture of ``configs/pcm3_quick.yaml``.

Protocols (rows): the ``detection`` task with window features and

- ``ours``: the defaults (the encoder frozen in eval mode; every training frame gets the
  inference window, stride 4, and its own label);
- ``batchnorm=train``: the training windows through a copy of the encoder in train mode;
- ``strides 3-5``: ``train_window_strides=[3, 4, 5]``, labels at the window centre;
- ``official``: both, the PCM3 authors' linear detection protocol.

Metrics (columns), all computed from the same predictions of each run: our ``map@t`` (per-class
VOC AP, one-to-one matching to the best unmatched ground truth, averaged over the classes in the
test ground truth), the authors' matching rule (``matching=voc``) at 0.5, and PKU-MMD's own
``evaluate.py`` (``mAP_action`` over every class slot, ``mAP_video``, ``2DAP``; module
``pcm3.tasks.detection_pkummd``). Mean ± sample std over ``--seeds`` (a seed draws the training
frames, the strides, the batch order and the classifier's initialisation). Test classes without
any training interval are left out of every metric (``unseen_test_classes=ignore``), their class
slots included.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from pcm3.tasks.detection import DetectionConfig, DetectionOutput, detect
from pcm3.tasks.detection_metrics import detection_map
from pcm3.tasks.detection_pkummd import pkummd_metrics
from pcm3.tasks.features import split_pair

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
START, END = "<!-- detection-pkummd:start -->", "<!-- detection-pkummd:end -->"
PROTOCOLS: dict[str, dict] = {
    "ours": {},
    "batchnorm=train": {"batchnorm": "train"},
    "strides 3-5": {"train_window_strides": [3, 4, 5]},
    "official": {"batchnorm": "train", "train_window_strides": [3, 4, 5]},
}
COLUMNS = [("map@0.1", "ours mAP@0.1"), ("map@0.3", "ours mAP@0.3"), ("map@0.5", "ours mAP@0.5"),
           ("voc@0.5", "authors' matching mAP@0.5"), ("action@0.5", "PKU-MMD mAP_action@0.5"),
           ("video@0.5", "PKU-MMD mAP_video@0.5"), ("2dap", "PKU-MMD 2DAP"),
           ("frame_accuracy", "frame acc.")]
SECTION = f"""
## Detection on PKU-MMD: the authors' options and both metrics (`detection_pkummd.py`)

```
.venv/bin/python benchmarks/detection_pkummd.py --encoder ENCODER --seeds 0,1,2 --write benchmarks/README.md
```

Rows: the `detection` task with our defaults, with each of the PCM3 authors' training options
(`batchnorm=train`, `train_window_strides=[3,4,5]`) and with both. Columns: our mAP, the
authors' matching rule, and PKU-MMD's own `evaluate.py` (`metric=pkummd`), all from the same
predictions. See the script's docstring.

{START}
{END}
"""


def all_metrics(out: DetectionOutput, num_classes: int) -> dict[str, float]:
    """Every column's value (percent) from one run's predictions and ground truth."""
    ours = detection_map(out.predictions, out.ground_truth, num_classes, [0.1, 0.3, 0.5])
    voc = detection_map(out.predictions, out.ground_truth, num_classes, [0.5], matching="voc")
    pku = pkummd_metrics(out.predictions, out.ground_truth, num_classes, [0.5], out.ignored_classes)
    values = {f"map@{t}": ours[f"mAP@{t}"] for t in ("0.1", "0.3", "0.5")}
    values.update({"voc@0.5": voc["mAP@0.5"], "action@0.5": pku["mAP_action@0.5"],
                   "video@0.5": pku["mAP_video@0.5"], "2dap": pku["2DAP"]})
    values = {k: 100.0 * v for k, v in values.items()}
    values["frame_accuracy"] = out.metrics["frame_accuracy"]
    return values


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def markdown(rows: list[dict]) -> str:
    """One line per protocol: mean ± std over its seeds of every column."""
    lines = ["| protocol | options | " + " | ".join(title for _, title in COLUMNS) + " | seeds |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for name in PROTOCOLS:
        runs = [r for r in rows if r["protocol"] == name]
        if not runs:
            continue
        options = ", ".join(f"`{k}={v}`" for k, v in PROTOCOLS[name].items()) or "defaults"
        cells = [mean_std([r["values"][key] for r in runs]) for key, _ in COLUMNS]
        lines.append(f"| {name} | {options} | " + " | ".join(cells) + f" | {len(runs)} |")
    return "\n".join(lines)


def run(args: argparse.Namespace, tmp: Path, device: torch.device) -> tuple[list[dict], dict]:
    from detection_speed import dataset_store, first, make_encoder

    store = dataset_store("pku", args, tmp)
    train, test = (first(part, args.max_sequences) for part in split_pair(store, None, None))
    loaded = make_encoder(args, store)
    rows = []
    for name, options in PROTOCOLS.items():
        overrides = {"features": "window", "unseen_test_classes": "ignore", **options}
        if args.epochs is not None:
            overrides.update(epochs=args.epochs, milestones=[max(1, args.epochs * 2 // 3)])
        for seed in args.seeds:
            out = detect(loaded, train, test, DetectionConfig(**overrides), seed, device)
            values = all_metrics(out, test.num_classes)
            print(f"{name} seed {seed}: " + ", ".join(f"{k} {v:.1f}" for k, v in values.items()),
                  file=sys.stderr, flush=True)
            rows.append({"protocol": name, "seed": seed, "values": values,
                         "ignored": len(out.ignored_classes)})
    info = {"encoder": loaded.source, "train": len(train), "test": len(test),
            "classes": len({int(c) for g in out.ground_truth.values() for c in g[:, 0]}),
            "ignored": len(out.ignored_classes), "slots": test.num_classes - len(out.ignored_classes)}
    return rows, info


def report(rows: list[dict], info: dict, args: argparse.Namespace, load: tuple[str, str]) -> str:
    from pretrain_speed import machine

    m = machine()
    return "\n".join([
        START,
        f"Command: `python benchmarks/detection_pkummd.py {shlex.join(sys.argv[1:])}`  ",
        f"Date: {datetime.datetime.now().isoformat(timespec='minutes')}  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}; load average before: {load[0]}, "
        f"after: {load[1]}  ",
        f"Encoder: {info['encoder']}; recordings train / test: {info['train']} / {info['test']}; "
        f"test classes scored: {info['classes']} ({info['ignored']} without training intervals left out; "
        f"PKU-MMD mAP_action averages {info['slots']} class slots)  ",
        "", markdown(rows), "", END])


def write_block(path: Path, block: str) -> None:
    """Replace the block between the markers in ``path``, or append the section with it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if START not in text:
        text = text.rstrip("\n") + "\n" + SECTION
    head, _, rest = text.partition(START)
    path.write_text(head + block + rest.partition(END)[2])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder",
                   help="pcm3 checkpoint / exported encoder (default: random init of the quick config)")
    p.add_argument("--pku", type=Path, default=ROOT.parent / "shared" / "data" / "pku_mmd_part1")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--max-sequences", type=int, help="use only the first N recordings of each split")
    p.add_argument("--epochs", type=int, help="classifier epochs (default: the task's 60, x0.1 at 40)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--write", type=Path, help="put the results block into this Markdown file")
    args = p.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(args.threads)
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        rows, info = run(args, Path(tmp), torch.device(args.device))
    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    block = report(rows, info, args, (load_before, load_after))
    print(block)
    if args.write:
        write_block(args.write, block)


if __name__ == "__main__":
    main()
