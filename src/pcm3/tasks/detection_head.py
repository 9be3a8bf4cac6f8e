"""The trained frame classifier of the detection task as a file (``save_head=PATH`` of
``pcm3 eval detection``), for ``pcm3 demo`` and your own use.

A safetensors file: tensors ``mean``, ``std`` (the feature scaling, ``(D,)``), ``weight``
``(K + 1, D)`` and ``bias`` ``(K + 1,)`` of ``Linear(D, K + 1)`` (output 0 = background, action
``k`` -> ``k + 1``); metadata ``detection_head`` (JSON): the K class names, the per-frame feature
options the classifier was trained on, the smoothing and activity threshold of the protocol, and
the spec and source of the encoder whose features it reads. No pickle.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcm3.errors import Pcm3Error
from pcm3.models.encoder import EncoderSpec
from pcm3.tasks.detection_classifier import FrameClassifier
from pcm3.tasks.detection_features import FrameFeatureOptions
from pcm3.tasks.detection_metrics import smooth_probabilities

HEAD_METADATA = "detection_head"
TENSORS = ("mean", "std", "weight", "bias")
BACKGROUND = "background"


@dataclass
class DetectionHead:
    """A frame classifier with what it needs to be used like the detection task uses it."""

    classifier: FrameClassifier
    class_names: list[str]  # K actions; output k + 1 is class_names[k], output 0 is background
    feature_options: FrameFeatureOptions
    smoothing: int
    activity_threshold: float
    encoder_spec: EncoderSpec | None  # None: trained on raw coordinates
    encoder_source: str

    @property
    def output_names(self) -> list[str]:
        """The K + 1 output names: ``background`` then the actions."""
        return [BACKGROUND, *self.class_names]

    def check_encoder(self, spec: EncoderSpec | None, encoder: str, head: str) -> None:
        """Refuse features of an encoder other than the one the head was trained on."""
        if self.encoder_spec is None:
            raise Pcm3Error(f"{head} was trained on raw coordinates ({self.encoder_source}), not on the "
                            f"features of an encoder file such as {encoder}")
        if spec is None or spec.to_dict() != self.encoder_spec.to_dict():
            theirs = "no spec" if spec is None else (f"{spec.backbone}, {spec.describe()}, "
                                                     f"stream {spec.stream}")
            ours = self.encoder_spec
            raise Pcm3Error(f"{head} was trained on the features of {self.encoder_source} ({ours.backbone}, "
                            f"{ours.describe()}, stream {ours.stream}); {encoder} is another encoder "
                            f"({theirs})")

    @torch.no_grad()
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """``(T, D)`` frame features -> ``(T, K + 1)`` float32 softmax probabilities (unsmoothed)."""
        feats = torch.as_tensor(np.asarray(features, dtype=np.float32))
        return torch.softmax(self.classifier.eval()(feats), dim=1).numpy()

    def frame_labels(self, features: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Per frame the name of the most probable output after the task's smoothing, and the
        smoothed ``(T, K + 1)`` probabilities."""
        smoothed = smooth_probabilities(self.probabilities(features), self.smoothing)
        names = self.output_names
        return [names[k] for k in smoothed.argmax(axis=1).tolist()], smoothed


def save_detection_head(path: str | Path, classifier: FrameClassifier, class_names: list[str],
                        feature_options: FrameFeatureOptions, smoothing: int, activity_threshold: float,
                        encoder_spec: EncoderSpec | None, encoder_source: str) -> Path:
    """Write a :class:`DetectionHead` to ``path`` (safetensors + JSON metadata)."""
    from safetensors.torch import save_file

    if classifier.num_outputs != len(class_names) + 1:
        raise Pcm3Error(f"{path}: {classifier.num_outputs} classifier outputs for {len(class_names)} "
                        "classes + background")
    tensors = {"mean": classifier.mean, "std": classifier.std, "weight": classifier.linear.weight,
               "bias": classifier.linear.bias}
    meta = {"class_names": list(class_names), "feature_options": dataclasses.asdict(feature_options),
            "smoothing": smoothing, "activity_threshold": activity_threshold,
            "encoder_spec": None if encoder_spec is None else encoder_spec.to_dict(),
            "encoder_source": encoder_source}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}, str(path),
              metadata={HEAD_METADATA: json.dumps(meta)})
    return path


def load_detection_head(path: str | Path) -> DetectionHead:
    """The :class:`DetectionHead` in ``path``; anything else is refused naming the file."""
    from safetensors import safe_open

    where = str(path)
    if not Path(path).is_file():
        raise Pcm3Error(f"{where}: detection head file not found")
    try:
        with safe_open(where, framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise Pcm3Error(f"{where}: cannot read safetensors file ({type(exc).__name__}: {exc})") from exc
    if HEAD_METADATA not in meta or sorted(tensors) != sorted(TENSORS):
        raise Pcm3Error(f"{where}: not a pcm3 detection head (expected tensors {list(TENSORS)} and "
                        f"metadata {HEAD_METADATA!r}; write one with pcm3 eval detection --save-head)")
    try:
        info: dict[str, Any] = json.loads(meta[HEAD_METADATA])
        names = [str(n) for n in info["class_names"]]
        options = FrameFeatureOptions(**info["feature_options"])
        spec = None if info["encoder_spec"] is None else EncoderSpec.from_dict(info["encoder_spec"], where)
        smoothing, threshold = int(info["smoothing"]), float(info["activity_threshold"])
        source = str(info["encoder_source"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Pcm3Error(f"{where}: bad {HEAD_METADATA!r} metadata ({type(exc).__name__}: {exc})") from None
    weight = tensors["weight"]
    d = tensors["mean"].numel()
    if weight.shape != (len(names) + 1, d) or tensors["bias"].shape != (len(names) + 1,) \
            or tensors["std"].shape != (d,):
        raise Pcm3Error(f"{where}: weight {tuple(weight.shape)} does not fit {len(names)} classes + "
                        f"background and D={d}")
    classifier = FrameClassifier(tensors["mean"], tensors["std"], len(names) + 1)
    with torch.no_grad():
        classifier.linear.weight.copy_(weight)
        classifier.linear.bias.copy_(tensors["bias"])
    return DetectionHead(classifier.eval(), names, options, smoothing, threshold, spec, source)
