"""Small-data tuning without the test split: pre-train on part of the training split, score
on the rest (1-NN and a logistic-regression probe), append one JSON line per run.

The tuning splits never touch the store's test split:
- built-in data: ``tune/train`` / ``tune/val`` = the ``xsub/train`` subjects split 2:1
  (every third subject, sorted, validates: 720 / 399 clips);
- NW-UCLA: ``tune/train`` = view 1, ``tune/val`` = view 2 (both from the training views).

    python benchmarks/tune_small_data.py --store data/builtin --name NAME --config configs/pcm3_quick.yaml \
        [key=value ...]            # results: runs/tune/results.jsonl
    python benchmarks/tune_small_data.py --store data/nwucla --name NAME \
        --bench configs/bench_methods_nwucla.yaml --entry skeletonclr/stgcn [key=value ...]

``--bench`` / ``--entry`` take the pre-training config of one entry of a bench's ``encoders:``
list (its config file, backbone and overrides), then the ``key=value`` overrides.

The linear number here is scikit-learn's logistic regression on standardised features (fast,
no schedule to tune); the benchmark's ``linear`` task is the SGD protocol of docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from pcm3.config import apply_overrides, from_dict, load_config, load_yaml, to_dict
from pcm3.data.store import open_store
from pcm3.engine.config import PretrainConfig
from pcm3.engine.pretrain import run_pretraining
from pcm3.tasks.base import raw_encoder, store_input_shape
from pcm3.tasks.encoders import load_encoder, random_encoder
from pcm3.tasks.features import extract_features, knn_top1

FILES = ("ids.json", "labels.npy", "lengths.npy", "meta.json", "x.npy")


def tuning_store(store_path: Path, out: Path) -> Path:
    """A folder linking the store's arrays, with only the tuning splits (built once)."""
    if (out / "splits.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if not (out / name).exists():
            os.symlink((store_path / name).resolve(), out / name)
    splits = json.loads((store_path / "splits.json").read_text())
    ids = json.loads((store_path / "ids.json").read_text())
    if "view1" in splits and "view2" in splits:  # NW-UCLA
        tune = {"tune/train": splits["view1"], "tune/val": splits["view2"]}
    else:  # subjects of the training split, every third one validates
        train = splits["xsub/train"]
        subjects = sorted({ids[i][:4] for i in train})
        val = set(subjects[::3])
        tune = {"tune/train": [i for i in train if ids[i][:4] not in val],
                "tune/val": [i for i in train if ids[i][:4] in val]}
    (out / "splits.json").write_text(json.dumps(tune))
    return out


def entry_config(bench: Path, entry: str | None, store_dir: Path, overrides: list[str]) -> PretrainConfig:
    """The pre-training config of the bench entry named ``entry``, on ``store_dir``, then ``overrides``."""
    from pcm3.tasks.bench import BenchConfig
    from pcm3.tasks.bench_encoders import resolve_entries

    bench_cfg = from_dict(BenchConfig, load_yaml(bench))
    resolved = {r.name: r for r in resolve_entries(bench_cfg.encoders, str(store_dir), bench_cfg.device)}
    if entry not in resolved or resolved[entry].pretrain is None:
        names = ", ".join(n for n, r in resolved.items() if r.pretrain is not None)
        raise SystemExit(f"--entry {entry!r}: not a pre-training entry of {bench} (entries: {names})")
    return from_dict(PretrainConfig, apply_overrides(to_dict(resolved[entry].pretrain), overrides))


def score(encoder: torch.nn.Module, store, frames: int, stream: str) -> tuple[float, float]:
    """(1-NN top-1, logistic-regression top-1) in percent on ``tune/val``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    tr, va = store.split("tune/train"), store.split("tune/val")
    a = extract_features(encoder, tr, torch.device("cpu"), frames, stream)
    b = extract_features(encoder, va, torch.device("cpu"), frames, stream)
    knn = knn_top1(a, tr.labels, b, va.labels)
    scaler = StandardScaler().fit(a)
    probe = LogisticRegression(max_iter=2000).fit(scaler.transform(a), tr.labels)
    linear = float(np.mean(probe.predict(scaler.transform(b)) == va.labels))
    return round(100 * knn, 1), round(100 * linear, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--name", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="a pre-training config file")
    source.add_argument("--bench", type=Path, help="a bench config with encoders: (with --entry)")
    p.add_argument("--entry", help="the name of the bench's pre-training entry, e.g. pcm3/stgcn")
    p.add_argument("--runs", type=Path, default=Path("runs/tune"))
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    store_dir = tuning_store(args.store, args.runs / f"{args.store.name}_tune")
    tuning = [f"data={store_dir}", "split=tune/train", "eval_split=tune/val", *args.overrides]
    cfg = (entry_config(args.bench, args.entry, store_dir, tuning) if args.bench
           else load_config(PretrainConfig, args.config, tuning))
    out = args.runs / args.name
    start = time.time()
    run_pretraining(cfg, out, resume="auto")
    store = open_store(store_dir)
    trained = load_encoder(out / "checkpoints" / "last.pt")
    random = random_encoder(cfg, store.layout, *store_input_shape(store))
    raw = raw_encoder(store.layout, *store_input_shape(store), cfg.augment.view_frames)
    row = {"name": args.name, "store": str(args.store), "overrides": args.overrides,
           "minutes": round((time.time() - start) / 60, 1),
           "pretrained": score(trained.encoder, store, trained.view_frames, trained.stream),
           "random-init": score(random.encoder, store, random.view_frames, random.stream),
           "raw": score(raw.encoder, store, raw.view_frames, "joint")}
    print(json.dumps(row))
    with open(args.runs / "results.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
