"""Benchmark pictures: t-SNE of features, confusion matrix, detection timeline, training curves.

Every function draws on its own ``matplotlib.figure.Figure`` with the Agg canvas (pyplot and
the global backend are never touched), writes one PNG at ``out_path`` and returns that path.
Empty or inconsistent inputs raise :class:`pcm3.errors.Pcm3Error` naming what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from pcm3.errors import DataError, Pcm3Error

MAX_TSNE_POINTS = 2000
EXACT_TSNE_POINTS = 300
_LEGEND_MAX_CLASSES = 40  # more classes than this: no legend (it would hide the plot)
_NOT_A_LOSS = {"step", "epoch", "lr", "samples_per_s", "knn_top1"}


def class_colours(num_classes: int) -> np.ndarray:
    """``(K, 4)`` RGBA: a distinct colour per class (tab10 / tab20, then a continuous map)."""
    if num_classes <= 10:
        return colormaps["tab10"](np.arange(num_classes))
    if num_classes <= 20:
        return colormaps["tab20"](np.arange(num_classes))
    return colormaps["turbo"](np.linspace(0.05, 0.95, num_classes))


def _save(fig: Figure, out_path: str | Path, dpi: int = 110) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(out_path, dpi=dpi)
    return out_path


def _class_name(class_names: Sequence[str], label: int) -> str:
    return class_names[label] if 0 <= label < len(class_names) else f"class {label}"


# ------------------------------------------------------------------------------------ t-SNE
def plot_tsne(features: np.ndarray, labels: np.ndarray, class_names: Sequence[str], out_path: str | Path,
              seed: int = 0, title: str = "t-SNE of encoder features") -> Path:
    """2-D t-SNE of ``features (N, D)`` coloured by ``labels (N,)`` (-1 = unlabelled, grey).

    At most :data:`MAX_TSNE_POINTS` points are embedded (a seeded random subsample).
    """
    from sklearn.manifold import TSNE

    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels).astype(np.int64)
    if features.ndim != 2 or features.shape[0] == 0:
        raise Pcm3Error(f"t-SNE needs features of shape (N, D) with N > 0, got {features.shape}")
    if labels.shape != (features.shape[0],):
        raise Pcm3Error(f"t-SNE: {features.shape[0]} feature rows but labels of shape {labels.shape}")
    if features.shape[0] < 4:
        raise Pcm3Error(f"t-SNE needs at least 4 samples, got {features.shape[0]}")
    if not np.isfinite(features).all():
        raise Pcm3Error("t-SNE: the features contain NaN or infinite values")
    rng = np.random.default_rng(seed)
    if features.shape[0] > MAX_TSNE_POINTS:
        keep = np.sort(rng.choice(features.shape[0], MAX_TSNE_POINTS, replace=False))
        features, labels = features[keep], labels[keep]
    n = features.shape[0]
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    method = "exact" if n <= EXACT_TSNE_POINTS else "barnes_hut"  # Barnes-Hut's overhead dominates small n
    xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed, method=method).fit_transform(features)

    num_classes = max(len(class_names), int(labels.max()) + 1)
    colours = class_colours(num_classes)
    fig = Figure(figsize=(8.5, 6.5))
    ax = fig.add_subplot()
    unlabelled = labels < 0
    if unlabelled.any():
        ax.scatter(*xy[unlabelled].T, s=6, c="lightgrey", label="unlabelled")
    for k in np.unique(labels[~unlabelled]):
        sel = labels == k
        ax.scatter(*xy[sel].T, s=8, color=colours[k], label=_class_name(class_names, int(k)))
    ax.set_title(f"{title} ({n} samples)")
    ax.set_xticks([])
    ax.set_yticks([])
    if num_classes <= _LEGEND_MAX_CLASSES:
        ax.legend(fontsize=6, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  ncol=1 if num_classes <= 20 else 2, frameon=False)
    fig.tight_layout()
    return _save(fig, out_path)


# ------------------------------------------------------------------------- confusion matrix
def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str],
                   out_path: str | Path, title: str = "confusion matrix (rows: true class)") -> Path:
    """Row-normalised confusion matrix (each true class sums to 1) of ``y_true`` vs ``y_pred``."""
    from sklearn.metrics import confusion_matrix

    y_true, y_pred = np.asarray(y_true).astype(np.int64), np.asarray(y_pred).astype(np.int64)
    if y_true.size == 0:
        raise Pcm3Error("confusion matrix: no predictions given")
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise Pcm3Error(f"confusion matrix: y_true {y_true.shape} and y_pred {y_pred.shape} "
                        "must be 1-D and of equal length")
    k = len(class_names)
    if k == 0:
        raise Pcm3Error("confusion matrix: no class names given")
    bad = np.concatenate([y_true, y_pred])
    bad = bad[(bad < 0) | (bad >= k)]
    if bad.size:
        raise Pcm3Error(f"confusion matrix: label {int(bad[0])} outside 0..{k - 1} ({k} class names)")
    matrix = confusion_matrix(y_true, y_pred, labels=np.arange(k), normalize="true")
    size = min(4.0 + 0.28 * k, 22.0)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(k)
    ax.set_xticks(ticks, [str(c) for c in class_names], rotation=90, fontsize=max(4, 9 - k // 12))
    ax.set_yticks(ticks, [str(c) for c in class_names], fontsize=max(4, 9 - k // 12))
    if k <= 15:
        for i in range(k):
            for j in range(k):
                if matrix[i, j] > 0:
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] > 0.5 else "black")
    accuracy = float((y_true == y_pred).mean()) * 100
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title}; top-1 {accuracy:.1f} %")
    fig.tight_layout()
    return _save(fig, out_path)


# ----------------------------------------------------------------------- detection timeline
def _label_index(label: Any, class_names: Sequence[str], where: str) -> int:
    if isinstance(label, str):
        if label not in class_names:
            raise Pcm3Error(f"{where}: unknown class {label!r}")
        return list(class_names).index(label)
    return int(label)


def plot_detection_timeline(sequences: Sequence[dict[str, Any]], class_names: Sequence[str],
                            out_path: str | Path, title: str = "detection timeline") -> Path:
    """Ground truth and predicted segments of untrimmed sequences, two rows per sequence.

    Each sequence: ``{"name", "length", "truth": [(label, start, end)], "pred": [(label, start,
    end, score)]}`` (``end`` exclusive, labels are class indices or names). A prediction's
    opacity is its score (clipped to [0.25, 1]).
    """
    if not sequences:
        raise Pcm3Error("detection timeline: no sequences given")
    colours = class_colours(max(len(class_names), 1))
    fig = Figure(figsize=(11, 0.9 + 0.8 * len(sequences)))
    ax = fig.add_subplot()
    seen: set[int] = set()
    names = []
    for row, seq in enumerate(sequences):
        missing = [k for k in ("name", "length", "truth", "pred") if k not in seq]
        if missing:
            raise Pcm3Error(f"detection timeline: sequence {row} has no {missing[0]!r}")
        where = f"sequence {seq['name']!r}"
        y_truth, y_pred = 3 * row, 3 * row + 1  # truth above prediction (the y axis is inverted)
        for y in (y_truth, y_pred):
            ax.broken_barh([(0, float(seq["length"]))], (y + 0.1, 0.8), facecolors="whitesmoke")
        for kind, y, items in (("truth", y_truth, seq["truth"]), ("pred", y_pred, seq["pred"])):
            for item in items:
                label = _label_index(item[0], class_names, where)
                start, end = float(item[1]), float(item[2])
                if end <= start:
                    raise Pcm3Error(f"{where}: {kind} segment [{start:g}, {end:g}) is empty")
                score = float(item[3]) if kind == "pred" and len(item) > 3 else 1.0
                colour = colours[label % len(colours)]
                ax.broken_barh([(start, end - start)], (y + 0.1, 0.8), facecolors=colour,
                               alpha=float(np.clip(score, 0.25, 1.0)), edgecolor="black", linewidth=0.3)
                seen.add(label)
        names += [f"{seq['name']} truth", f"{seq['name']} pred"]
    ax.set_yticks([3 * (i // 2) + (i % 2) + 0.5 for i in range(len(names))], names, fontsize=7)
    ax.set_xlim(0, max(float(s["length"]) for s in sequences))
    ax.set_ylim(-0.3, 3 * len(sequences) - 0.7)
    ax.invert_yaxis()
    ax.set_xlabel("frame")
    ax.set_title(title)
    handles = [Patch(facecolor=colours[k % len(colours)], label=_class_name(class_names, k))
               for k in sorted(seen)]
    if handles:
        ax.legend(handles=handles, fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
                  ncol=1 if len(handles) <= 20 else 2)
    fig.tight_layout()
    return _save(fig, out_path)


# ------------------------------------------------------------------------- training curves
def read_metrics_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a trainer's ``metrics.jsonl`` (one JSON object per line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise DataError("no training metrics file", path=path) from exc
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"not a JSON line: {exc}", path=path, line=number) from exc
        if not isinstance(row, dict) or "step" not in row:
            raise DataError("expected a JSON object with a 'step'", path=path, line=number)
        rows.append(row)
    return rows


def _series(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    data = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    return data[:, 0], data[:, 1]


def plot_training_curves(metrics_jsonl_path: str | Path, out_path: str | Path,
                         title: str = "pre-training") -> Path:
    """Loss terms and learning rate against the step, plus the online 1-NN top-1 when logged."""
    rows = read_metrics_jsonl(metrics_jsonl_path)
    losses = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in _NOT_A_LOSS
              and any(isinstance(r.get(k), (int, float)) for r in rows)]
    has_lr = any("lr" in r for r in rows)
    has_knn = any("knn_top1" in r for r in rows)
    if not losses and not has_knn:
        raise DataError("no loss or 1-NN values to plot", path=metrics_jsonl_path)
    panels = 1 + has_lr + has_knn
    fig = Figure(figsize=(7, 2.6 * panels))
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    positive = True
    for key in losses:
        steps, values = _series(rows, key)
        positive &= bool((values > 0).all())
        ax.plot(steps, values, label=key, linewidth=2.0 if key == "loss" else 1.0)
    if losses:
        if positive:
            ax.set_yscale("log")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7, ncol=2)
    ax.set_title(title)
    panel = 1
    if has_lr:
        steps, values = _series(rows, "lr")
        axes[panel].plot(steps, values, color="tab:grey")
        axes[panel].set_ylabel("learning rate")
        panel += 1
    if has_knn:
        steps, values = _series(rows, "knn_top1")
        axes[panel].plot(steps, values * 100, marker="o", color="tab:green")
        axes[panel].set_ylabel("online 1-NN top-1 (%)")
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    return _save(fig, out_path)
