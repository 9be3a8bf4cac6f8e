"""Is an encoder's 1-NN top-1 really above raw coordinates? A paired comparison on one test split.

Both representations classify the same test clips (1-NN, cosine, training split as gallery,
the ``knn`` task's protocol). Reported: each accuracy, the clips only one of them gets right,
the exact McNemar p-value (two-sided binomial test on those discordant clips), and the
accuracies on the classes the encoder saw in pre-training vs those held out of it
(``exclude_classes`` in its config, e.g. the bench's few-shot novel classes)::

    python benchmarks/knn_paired.py --encoder runs/quickstart/pretrain/checkpoints/last.pt --data data/builtin
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from encoder_split_args import add_encoder_split_arguments, open_encoder_and_splits
from scipy.stats import binomtest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize

from pcm3.tasks.base import raw_encoder, store_input_shape
from pcm3.tasks.features import extract_features


def correct(encoder: torch.nn.Module, train, test, frames: int, stream: str) -> np.ndarray:
    """``(N_test,)`` bool: whether 1-NN gets each test clip right."""
    cpu = torch.device("cpu")
    gallery = extract_features(encoder, train, cpu, frames, stream)
    query = extract_features(encoder, test, cpu, frames, stream)
    keep = train.labels >= 0
    clf = KNeighborsClassifier(n_neighbors=1, metric="cosine", algorithm="brute")
    clf.fit(normalize(gallery[keep]), train.labels[keep])
    return clf.predict(normalize(query)) == test.labels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_encoder_split_arguments(p, "data/builtin", "xsub/train", "xsub/val")
    store, train, test, loaded = open_encoder_and_splits(p.parse_args())
    raw = raw_encoder(store.layout, *store_input_shape(store), loaded.view_frames)
    ours = correct(loaded.encoder, train, test, loaded.view_frames, loaded.stream)
    base = correct(raw.encoder, train, test, raw.view_frames, "joint")
    only_ours, only_raw = int((ours & ~base).sum()), int((~ours & base).sum())
    p_value = binomtest(only_ours, only_ours + only_raw).pvalue if only_ours + only_raw else 1.0
    print(f"test clips {len(ours)}: encoder {100 * ours.mean():.1f}, raw {100 * base.mean():.1f}; "
          f"right only with the encoder {only_ours}, only with raw {only_raw}; "
          f"exact McNemar p = {p_value:.3f}")
    held_out = np.isin(test.labels, loaded.config.get("exclude_classes") or [])
    for name, rows in (("classes seen in pre-training", ~held_out), ("classes held out of it", held_out)):
        if rows.any():
            print(f"{name} ({rows.sum()} clips): encoder {100 * ours[rows].mean():.1f}, "
                  f"raw {100 * base[rows].mean():.1f}")


if __name__ == "__main__":
    main()
