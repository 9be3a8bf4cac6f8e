"""Score an encoder and raw coordinates with the protocol of ``official_pcm3_on_nwucla.md``.

That reference note measured the original PCM3 code and raw coordinates with: frozen features
of the 0.95 centre crop; standardised features and a logistic regression whose C is chosen by
5-fold cross-validation on the training split only; 1-NN, cosine on L2-normalised features.
This script applies the same protocol to any encoder, so our numbers can be set against the
note's (raw coordinates 76.5 / 77.2 there)::

    python benchmarks/reference_protocol.py --encoder runs/bench_nwucla/pretrain/checkpoints/last.pt \\
        --data data/nwucla --train xview/train --test xview/val
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from encoder_split_args import add_encoder_split_arguments, open_encoder_and_splits
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pcm3.tasks.base import raw_encoder, store_input_shape
from pcm3.tasks.features import extract_features, knn_top1

C_GRID = [0.001, 0.01, 0.1, 1.0, 10.0]


def scores(encoder: torch.nn.Module, train, test, frames: int, stream: str) -> tuple[float, float]:
    """(logistic regression top-1, 1-NN top-1) in percent."""
    cpu = torch.device("cpu")
    a = extract_features(encoder, train, cpu, frames, stream)
    b = extract_features(encoder, test, cpu, frames, stream)
    probe = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=C_GRID, cv=5, max_iter=3000))
    probe.fit(a, train.labels)
    linear = float(np.mean(probe.predict(b) == test.labels))
    return round(100 * linear, 1), round(100 * knn_top1(a, train.labels, b, test.labels), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_encoder_split_arguments(p, "data/nwucla", "xview/train", "xview/val")
    p.add_argument("--raw-frames", default="32,64", help="view lengths for the raw-coordinate rows")
    args = p.parse_args()
    store, train, test, loaded = open_encoder_and_splits(args)
    print("| representation | linear (logistic, C by 5-fold CV) | 1-NN |\n|---|---|---|")
    linear, knn = scores(loaded.encoder, train, test, loaded.view_frames, loaded.stream)
    print(f"| {loaded.source} ({loaded.view_frames}-frame view) | {linear} | {knn} |")
    for frames in map(int, args.raw_frames.split(",")):
        raw = raw_encoder(store.layout, *store_input_shape(store), frames)
        linear, knn = scores(raw.encoder, train, test, frames, "joint")
        print(f"| raw coordinates ({frames}-frame view) | {linear} | {knn} |")


if __name__ == "__main__":
    main()
