"""Does bf16 autocast cost accuracy? Pre-train the same config in fp32 and in bf16 (same seed,
same data) and compare frozen-feature 1-NN and linear accuracy on the held-out split.

    python benchmarks/precision_accuracy.py --config configs/pcm3_quick.yaml --out runs/precision

Linear here = logistic regression on standardised frozen features (scikit-learn, C=1, no
selection on the test split); 1-NN = cosine on L2-normalised features. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml


def evaluate(checkpoint: Path, data: str) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from pcm3.engine.pretrain import pick_splits, resolve_store
    from pcm3.tasks.encoders import load_encoder
    from pcm3.tasks.features import extract_features, knn_top1

    loaded = load_encoder(checkpoint)
    _, evaluation = pick_splits(resolve_store(data), None, None)
    assert evaluation is not None, "the store needs a labelled val split"
    gallery, query = evaluation
    device = torch.device("cpu")
    fg = extract_features(loaded.encoder, gallery, device, loaded.view_frames, loaded.stream)
    fq = extract_features(loaded.encoder, query, device, loaded.view_frames, loaded.stream)
    scaler = StandardScaler().fit(fg)
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(fg), gallery.labels)
    linear = float((clf.predict(scaler.transform(fq)) == query.labels).mean())
    return {"knn_top1": knn_top1(fg, gallery.labels, fq, query.labels), "linear_top1": linear}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/pcm3_quick.yaml")
    parser.add_argument("--out", type=Path, default=Path("runs/precision"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    rows = []
    for precision in ("fp32", "bf16"):
        run = args.out / precision
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pcm3", "pretrain", "--config", args.config, "--out", str(run),
                        f"precision={precision}", *args.overrides], check=True)
        seconds = time.perf_counter() - start
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        metrics = evaluate(run / "checkpoints" / "last.pt", cfg["data"])
        rows.append((precision, metrics, seconds))
    extra = " ".join(args.overrides)
    print(f"\nCommand: python benchmarks/precision_accuracy.py --config {args.config} {extra}")
    print("\n| precision | 1-NN top-1 % | linear top-1 % | pre-training wall-clock s |")
    print("|---|---|---|---|")
    for precision, m, seconds in rows:
        print(f"| {precision} | {100 * m['knn_top1']:.1f} | {100 * m['linear_top1']:.1f} | {seconds:.0f} |")
    diff = {k: 100 * (rows[1][1][k] - rows[0][1][k]) for k in rows[0][1]}
    print(f"\nbf16 - fp32: 1-NN {diff['knn_top1']:+.1f} points, linear {diff['linear_top1']:+.1f} points")
    (args.out / "results.json").write_text(json.dumps(
        [{"precision": p, **m, "seconds": round(s, 1)} for p, m, s in rows], indent=1))


if __name__ == "__main__":
    main()
