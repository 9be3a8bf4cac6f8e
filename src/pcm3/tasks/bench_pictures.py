"""The pictures of ``pcm3 bench``: t-SNE of test features, the linear head's confusion matrix,
a detection timeline (ground truth vs predicted segments) and the pre-training curves."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pcm3.config import from_dict, to_dict
from pcm3.errors import Pcm3Error
from pcm3.tasks.encoders import LoadedEncoder
from pcm3.tasks.features import split_pair

DETECTION_PREDICTIONS = "detection_predictions.json"  # written by the detection task
TIMELINE_SEQUENCES = 6  # sequences drawn in the detection timeline


def draw_pictures(out_dir: Path, name: str, encoder: LoadedEncoder, trimmed: Any, untrimmed: Any,
                  configs: dict[str, Any], seed: int, device: torch.device,
                  log: Callable[[str], None] = print, pretrain_dir: Path | None = None) -> list[Path]:
    """The pictures of the pre-trained encoder ``name`` into ``out_dir/pictures``, from the
    trimmed store, the untrimmed store (or None), the finished tasks under ``out_dir/tasks/name``
    and the training curves of ``pretrain_dir`` (default ``out_dir/pretrain``); a picture whose
    input is missing or unusable is skipped with a note."""
    from pcm3.tasks.bench_encoders import slug

    folder = out_dir / "pictures"
    probe_cfg = configs.get("linear") or configs.get("knn")
    splits = (getattr(probe_cfg, "train_split", None), getattr(probe_cfg, "test_split", None))
    drawers: dict[str, Callable[[], Path | None]] = {
        "t-SNE": lambda: _tsne(encoder, split_pair(trimmed, *splits)[1], device, seed, folder),
        "confusion matrix": lambda: _confusion(encoder, *split_pair(trimmed, *splits), device, seed,
                                               configs.get("linear"), folder),
        "detection timeline": lambda: _timeline(out_dir / "tasks" / slug(name), untrimmed, configs, folder),
        "training curves": lambda: _curves((pretrain_dir or out_dir / "pretrain") / "metrics.jsonl", folder),
    }
    made = []
    for what, draw in drawers.items():
        try:
            path = draw()
        except Pcm3Error as exc:
            log(f"[bench] no {what} picture: {exc}")
            continue
        if path is not None:
            made.append(path)
    return made


def _tsne(encoder: LoadedEncoder, test: Any, device: torch.device, seed: int, folder: Path) -> Path:
    from pcm3.tasks.features import cached_features
    from pcm3.viz.plots import plot_tsne

    features = cached_features(encoder, test, device)
    return plot_tsne(features, test.labels, test.class_names, folder / "tsne.png", seed,
                     title=f"t-SNE of {test.split_name} features")


def _confusion(encoder: LoadedEncoder, train: Any, test: Any, device: torch.device, seed: int,
               linear_cfg: Any, folder: Path) -> Path:
    """The linear protocol's head (:func:`train_linear_head`, the linear task's optimisation
    settings, centre-crop features) on the test split, as a confusion matrix."""
    from pcm3.tasks.features import cached_features, evaluation_labels, labelled_rows
    from pcm3.tasks.probe import ProbeConfig, predict_scores, train_linear_head
    from pcm3.viz.plots import plot_confusion

    rows = labelled_rows(train)
    y_test = evaluation_labels(test)
    features = cached_features(encoder, train, device)[rows]
    probe = from_dict(ProbeConfig, {k: v for k, v in to_dict(linear_cfg or ProbeConfig()).items()
                                    if k in ProbeConfig.__dataclass_fields__})
    head = train_linear_head(features, train.labels[rows], train.num_classes, probe, seed, device)
    predicted = predict_scores(head, cached_features(encoder, test, device)).argmax(1).numpy()
    return plot_confusion(y_test, predicted, test.class_names, folder / "confusion_linear.png",
                          title=f"linear head, {test.split_name} (rows: true class)")


def _timeline(task_dir: Path, untrimmed: Any, configs: dict[str, Any], folder: Path) -> Path | None:
    """Ground truth vs the detection task's predictions on the first test sequences."""
    from pcm3.viz.plots import plot_detection_timeline

    found = [(t, task_dir / t / DETECTION_PREDICTIONS) for t in configs]
    found = [(t, p) for t, p in found if p.exists()]  # the tasks that wrote detections
    if not found:
        return None
    task, path = found[0]
    try:
        predictions = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise Pcm3Error(f"{path}: invalid JSON: {exc}") from exc
    task_cfg = configs[task]
    split = next((p["split"] for p in predictions if "split" in p), getattr(task_cfg, "test_split", None))
    test = split_pair(untrimmed, getattr(task_cfg, "train_split", None), split)[1]
    sequences = []
    for i in range(min(len(test), TIMELINE_SEQUENCES)):
        truth = [tuple(int(v) for v in row) for row in test.intervals(i)]
        pred = [(p["label"], p["start"], p["end"], p.get("score", 1.0)) for p in predictions
                if int(p["sequence"]) == i]
        sequences.append({"name": str(test.ids[i]), "length": int(test.lengths[i]), "truth": truth,
                          "pred": pred})
    return plot_detection_timeline(sequences, test.class_names, folder / "detection_timeline.png",
                                   title=f"{task}: ground truth vs predictions ({test.split_name})")


def _curves(metrics: Path, folder: Path) -> Path | None:
    from pcm3.viz.plots import plot_training_curves

    return plot_training_curves(metrics, folder / "training_curves.png") if metrics.exists() else None
