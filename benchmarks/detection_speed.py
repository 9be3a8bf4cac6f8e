"""Detection: per-frame feature extraction speed of the `sequence` vs `window` mode, and the mAP of each.

    .venv/bin/python benchmarks/detection_speed.py --repeats 3 --write benchmarks/README.md
    .venv/bin/python benchmarks/detection_speed.py --max-sequences 2 --repeats 1 --epochs 2   # smoke run

Modes (``--modes``, separated by ``;``): ``sequence[:stride=S,context=C,lookahead=L]`` (the
task's ``sequence_stride`` / ``sequence_context`` / ``sequence_lookahead``) and
``window[:batch=B]`` (``B`` windows per encoder call, default 512; ``window:batch=1`` is the
official inference loop, one window per call, one recording at a time). The speed-up column
divides by the frames/s of ``window:batch=1`` on the same dataset when it was run.

For each dataset (the built-in untrimmed recordings, generated when absent, and PKU-MMD Part I from
``$PCM3_DATA/pku_mmd_part1`` (default ``../shared/data`` beside the checkout) converted with the
``pku-mmd`` reader into a temporary store) and
each feature mode of the ``detection`` task: the wall-clock time to compute the features of every
frame of the test split (median of ``--repeats``, after a warm-up on one sequence), as frames/s,
and the task's mAP@0.1/0.3/0.5 and frame accuracy (classifier trained on the training split).
The encoder is ``--encoder`` (a pcm3 checkpoint or exported encoder) or, by default, a random
initialisation (seed 0) of the architecture of ``configs/pcm3_quick.yaml``. Test classes without
any training interval are left out of the evaluation (``unseen_test_classes=ignore``; the PKU-MMD
subset here has 13 recordings, so many of its test classes are never seen in training).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from pcm3.config import load_config
from pcm3.data.store import UntrimmedStore, open_untrimmed
from pcm3.engine.config import PretrainConfig
from pcm3.tasks.base import store_input_shape
from pcm3.tasks.detection import DetectionConfig, detect
from pcm3.tasks.detection_features import iter_frame_features
from pcm3.tasks.encoders import LoadedEncoder, load_encoder, random_encoder
from pcm3.tasks.features import split_pair

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
START, END = "<!-- detection-speed:start -->", "<!-- detection-speed:end -->"
SECTION = f"""
## Detection: whole-sequence vs window features (`detection_speed.py`)

```
.venv/bin/python benchmarks/detection_speed.py --repeats 3 --write benchmarks/README.md
.venv/bin/python benchmarks/detection_speed.py --max-sequences 2 --repeats 1 --epochs 2   # smoke run
```

Per dataset and mode (see the script's docstring): the time to compute every test frame's
feature (median of `--repeats`), frames/s, the speed-up over the official one-window-per-call
loop (`window:batch=1`), and the `detection` task's mAP with the same features.

{START}
{END}
"""


def dataset_store(name: str, args: argparse.Namespace, tmp: Path) -> UntrimmedStore:
    if name == "builtin":
        if not (args.builtin / "untrimmed" / "meta.json").exists():
            from pcm3.data.synthetic import synthesize_store

            print(f"generating the built-in dataset at {args.builtin} ...", file=sys.stderr)
            synthesize_store(args.builtin)
        return open_untrimmed(args.builtin)
    if name == "pku":
        from pcm3.cli import main as pcm3_main

        out = tmp / "pku_mmd_part1"
        if pcm3_main(["data", "convert", "--format", "pku-mmd", "--out", str(out), str(args.pku)]) != 0:
            raise SystemExit(f"converting {args.pku} failed")
        return open_untrimmed(out)
    raise SystemExit(f"unknown dataset {name!r} (builtin, pku)")


def first(part: UntrimmedStore, n: int | None) -> UntrimmedStore:
    """The first ``n`` recordings of a split (all when ``n`` is None)."""
    return part if n is None else UntrimmedStore(part.path, part.indices[:n], name=part.split_name)


def make_encoder(args: argparse.Namespace, store: UntrimmedStore) -> LoadedEncoder:
    if args.encoder:
        return load_encoder(args.encoder)
    c, m = store_input_shape(store)
    cfg = load_config(PretrainConfig, ROOT / "configs" / "pcm3_quick.yaml")
    return random_encoder(cfg, store.layout, c, m, seed=0)


def time_extraction(loaded: LoadedEncoder, test: UntrimmedStore, cfg: DetectionConfig, repeats: int,
                    device: torch.device) -> list[float]:
    opts = cfg.feature_options()
    warm = UntrimmedStore(test.path, test.indices[:1], name=test.split_name)
    for _ in iter_frame_features(loaded.encoder, warm, loaded.stream, opts, device):
        pass
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        for _ in iter_frame_features(loaded.encoder, test, loaded.stream, opts, device):
            pass
        times.append(time.perf_counter() - tick)
    return times


MODE_KEYS = {"stride": "sequence_stride", "context": "sequence_context", "lookahead": "sequence_lookahead",
             "batch": "window_batch"}


def mode_options(spec: str) -> dict:
    """``MODE[:key=N,...]`` -> DetectionConfig fields, e.g. ``sequence:stride=4,context=64`` or
    ``window:batch=1`` (keys: stride, context, lookahead for sequence; batch for window)."""
    mode, _, rest = spec.partition(":")
    allowed = {"sequence": ("stride", "context", "lookahead"), "window": ("batch",)}.get(mode)
    out: dict = {"features": mode}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if allowed is None or key not in allowed or not value.isdigit():
            raise SystemExit(f"bad mode {spec!r}: expected sequence[:stride=S,context=C,lookahead=L] "
                             "or window[:batch=B]")
        out[MODE_KEYS[key]] = int(value)
    if allowed is None:
        raise SystemExit(f"bad mode {spec!r}: expected sequence[...] or window[...]")
    return out


def mode_label(spec: str) -> str:
    return "window, 1 per call (official loop)" if spec == "window:batch=1" else spec.replace(":", " ")


def run_dataset(name: str, args: argparse.Namespace, tmp: Path, device: torch.device) -> list[dict]:
    store = dataset_store(name, args, tmp)
    train, test = (first(part, args.max_sequences) for part in split_pair(store, None, None))
    loaded = make_encoder(args, store)
    rows = []
    for mode in args.modes:
        overrides = {**mode_options(mode), "unseen_test_classes": "ignore"}
        if args.epochs is not None:
            overrides.update(epochs=args.epochs, milestones=[max(1, args.epochs * 2 // 3)])
        cfg = DetectionConfig(**overrides)
        times = time_extraction(loaded, test, cfg, args.repeats, device)
        out = detect(loaded, train, test, cfg, args.seed, device)
        frames = int(test.lengths.sum())
        row = {"dataset": name, "mode": mode, "train": len(train), "test": len(test), "frames": frames,
               "seconds": statistics.median(times), "times": times, "metrics": out.metrics,
               "classes": len({int(c) for g in out.ground_truth.values() for c in g[:, 0]}),
               "ignored": len(out.ignored_classes), "encoder": loaded.source}
        print(f"{name} {mode}: {frames} frames in {row['seconds']:.3f} s {times}, {out.metrics}",
              file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| dataset | recordings train / test | test frames | mode | extraction s (median) | frames/s "
             "| x official loop | mAP@0.1 | mAP@0.3 | mAP@0.5 | frame acc. % | test classes (left out) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    official = {r["dataset"]: r["frames"] / r["seconds"] for r in rows if r["mode"] == "window:batch=1"}
    for r in rows:
        m, fps = r["metrics"], r["frames"] / r["seconds"]
        ratio = f"{fps / official[r['dataset']]:.1f}" if r["dataset"] in official else "-"
        lines.append(f"| {r['dataset']} | {r['train']} / {r['test']} | {r['frames']} "
                     f"| {mode_label(r['mode'])} "
                     f"| {r['seconds']:.3f} | {fps:.0f} | {ratio} | {m['map@0.1']:.1f} "
                     f"| {m['map@0.3']:.1f} | {m['map@0.5']:.1f} | {m['frame_accuracy']:.1f} "
                     f"| {r['classes']} ({r['ignored']}) |")
    return "\n".join(lines)


def report(rows: list[dict], args: argparse.Namespace, load: tuple[str, str]) -> str:
    from pretrain_speed import machine

    m = machine()
    command = "python benchmarks/detection_speed.py " + shlex.join(sys.argv[1:])
    encoder = rows[0]["encoder"] if rows else "-"
    return "\n".join([
        START,
        f"Command: `{command}`  ",
        f"Date: {datetime.datetime.now().isoformat(timespec='minutes')}  ",
        f"Machine: {m['cpu']} ({m['simd']}), {m['cores']} cores, torch {m['torch']}, python {m['python']}, "
        f"torch threads {args.threads}  ",
        f"Load average (1/5/15 min) before: {load[0]}, after: {load[1]}  ",
        f"Encoder: {encoder}; repeats {args.repeats}; max sequences per split {args.max_sequences}  ",
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
    p.add_argument("--datasets", default="builtin,pku")
    p.add_argument("--modes", default="sequence;sequence:stride=4,context=64;window;window:batch=1")
    p.add_argument("--builtin", type=Path, default=ROOT / "data" / "builtin")
    real_data = Path(os.environ.get("PCM3_DATA") or ROOT.parent / "shared" / "data")
    p.add_argument("--pku", type=Path, default=real_data / "pku_mmd_part1")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-sequences", type=int, help="use only the first N recordings of each split")
    p.add_argument("--epochs", type=int, help="classifier epochs (default: the task's 60, x0.1 at 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--write", type=Path, help="put the results block into this Markdown file")
    args = p.parse_args()
    args.modes = args.modes.split(";")
    for mode in args.modes:
        mode_options(mode)  # bad specs fail before any work
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load_before = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            rows += run_dataset(name, args, Path(tmp), device)
    load_after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    block = report(rows, args, (load_before, load_after))
    print(block)
    if args.write:
        write_block(args.write, block)


if __name__ == "__main__":
    main()
