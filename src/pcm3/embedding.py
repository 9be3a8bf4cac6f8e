"""Features of your own skeletons from a pre-trained encoder (``docs/embedding.md``)::

    import pcm3
    encoder = pcm3.load_encoder("ntu60_joint.safetensors")
    features = encoder.encode(x)            # x (N, T, V, C) or (N, M, T, V, C) -> (N, D)
    frames = encoder.encode(x, dense=True)  # -> (N, T, D), zero after each clip's length

Clips are fed exactly as the downstream tasks feed them: pre-processed like a store (null-frame
repair, centring, view alignment, with the encoder layout's joints; repeating them on data that
already went through them changes nothing), then for one feature per clip the evaluation view
(the central 95 % of the clip resized to the encoder's view length) in the encoder's stream; for
one feature per frame the detection task's per-frame features (by default a 64-frame window
around each frame, every 4th frame kept, read at the window's last step). Data of another layout
is first put into the encoder's layout (:mod:`pcm3.layout_mapping`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcm3.augment.temporal import centre_crop_resize
from pcm3.data.preprocess import STEPS, make_transform, select_bodies
from pcm3.errors import ConfigError
from pcm3.layout_mapping import layout_mapping
from pcm3.layouts import Layout, get_layout
from pcm3.modalities import to_stream
from pcm3.tasks.encoders import LoadedEncoder


class ClipSequences:
    """In-memory clips ``(N, C, T, V, M)`` with their lengths, read like an untrimmed store by the
    per-frame feature code (``sequence(i)``, ``lengths``, ``layout``)."""

    def __init__(self, x: np.ndarray, lengths: np.ndarray, layout: Layout) -> None:
        self.x, self.lengths, self.layout = x, lengths, layout

    def __len__(self) -> int:
        return len(self.x)

    def sequence(self, i: int) -> np.ndarray:
        return self.x[i, :, : int(self.lengths[i])]


def default_lengths(x: np.ndarray) -> np.ndarray:
    """``(N,)``: each clip ends at its last frame with a non-zero coordinate (x ``(N, C, T, V, M)``)."""
    filled = (x != 0).any(axis=(1, 3, 4))  # (N, T)
    empty = ~filled.any(axis=1)
    if empty.any():
        raise ConfigError(f"clip {int(np.argmax(empty))} has no non-zero coordinate")
    return x.shape[2] - np.argmax(filled[:, ::-1], axis=1)


class Embedder:
    """A frozen encoder that turns skeleton arrays into features (module docstring).

    ``batch_size``: clips per encoder call; ``crop_ratio``: the evaluation view's crop;
    ``dense_options``: the per-frame feature options (default: the detection task's).
    """

    def __init__(self, loaded: LoadedEncoder, device: str | torch.device = "cpu", batch_size: int = 64,
                 crop_ratio: float = 0.95, dense_options: Any = None) -> None:
        if dense_options is None:
            from pcm3.tasks.detection import DetectionConfig

            dense_options = DetectionConfig().feature_options()
        self.loaded = loaded
        self.device = torch.device(device)
        self.module = loaded.encoder.to(self.device).eval()
        self.batch_size, self.crop_ratio, self.dense_options = batch_size, crop_ratio, dense_options
        spec = loaded.spec  # None only for the parameter-free raw reference
        self.in_channels: int | None = None if spec is None else spec.in_channels
        self.num_persons: int | None = None if spec is None else spec.num_persons

    @property
    def layout(self) -> Layout:
        return self.loaded.layout

    @property
    def feature_dim(self) -> int:
        return int(self.loaded.feature_dim)

    def __repr__(self) -> str:
        return (f"Embedder({self.loaded.source!r}, layout={self.layout.name}, stream={self.loaded.stream}, "
                f"view_frames={self.loaded.view_frames}, D={self.feature_dim})")

    def prepare(self, x: np.ndarray, lengths: Sequence[int] | np.ndarray | None = None,
                layout: Layout | str | None = None, absent: str = "nearest",
                preprocess: bool | Sequence[str] = True) -> tuple[np.ndarray, np.ndarray]:
        """``x`` ``(N, T, V, C)`` / ``(N, M, T, V, C)`` -> ``(x (N, C, T, V', M'), lengths)`` in the
        encoder's layout and persons, pre-processed with ``preprocess`` (True: every step)."""
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 4:
            arr = arr[:, None]
        if arr.ndim != 5 or arr.shape[2] == 0 or arr.shape[0] == 0:
            raise ConfigError(f"expected clips (N, T, V, C) or (N, M, T, V, C), got shape {np.shape(x)}")
        source = self.layout if layout is None else get_layout(layout)
        if arr.shape[3] != source.num_joints:
            hint = "" if layout is not None else " (pass layout=... to map another layout onto it)"
            raise ConfigError(f"the clips have V={arr.shape[3]} joints; layout {source.name!r} has "
                              f"{source.num_joints}{hint}")
        if not np.isfinite(arr).all():
            raise ConfigError("the clips hold NaN or infinite coordinates")
        arr = arr.transpose(0, 4, 2, 3, 1)  # (N, C, T, V, M)
        if source.to_dict() != self.layout.to_dict():
            arr = layout_mapping(source, self.layout, absent).apply(arr, joint_axis=3, channel_axis=1)
        n, c, t = arr.shape[:3]
        if self.in_channels is not None and c != self.in_channels:
            raise ConfigError(f"the encoder reads C={self.in_channels} coordinates per joint; "
                              f"the clips have {c}")
        lengths = (default_lengths(arr) if lengths is None
                   else np.asarray(lengths, dtype=np.int64).reshape(-1))
        if len(lengths) != n or ((lengths < 1) | (lengths > t)).any():
            shown = np.asarray(lengths).tolist()[:8]
            raise ConfigError(f"lengths: expected {n} values in 1..{t}, got {shown}")
        arr = self._persons(arr)
        steps = STEPS if preprocess is True else () if preprocess is False else tuple(preprocess)
        if steps:
            arr, lengths = make_transform(self.layout, steps)(arr, lengths)
        return arr, lengths

    def _persons(self, x: np.ndarray) -> np.ndarray:
        """Pad missing persons with zeros; keep the most active ones when there are too many."""
        want = self.num_persons
        if want is None or x.shape[4] == want:
            return x
        if x.shape[4] < want:
            pad = np.zeros((*x.shape[:4], want - x.shape[4]), dtype=np.float32)
            return np.concatenate([x, pad], axis=4)
        bodies = x.transpose(0, 4, 2, 3, 1)  # (N, M, T, V, C)
        kept = np.stack([select_bodies(b, want) for b in bodies])
        return kept.transpose(0, 4, 2, 3, 1)

    @torch.no_grad()
    def encode(self, x: np.ndarray, lengths: Sequence[int] | np.ndarray | None = None, dense: bool = False,
               layout: Layout | str | None = None, absent: str = "nearest",
               preprocess: bool | Sequence[str] = True) -> np.ndarray:
        """Features of clips ``x`` ``(N, T, V, C)`` or ``(N, M, T, V, C)`` (float, zero padded).

        ``lengths`` ``(N,)``: valid frames (default: up to the last frame with a non-zero
        coordinate); ``layout``: the clips' layout when it is not the encoder's (mapped with
        ``absent`` fill); ``preprocess``: True (every step), False, or a list of steps.
        Returns ``(N, D)`` float32, or with ``dense`` ``(N, T, D)``, zero past each length.
        """
        if dense and preprocess is not False:  # repair would move frames: per-frame features keep them
            preprocess = [s for s in (STEPS if preprocess is True else preprocess) if s != "repair"]
        arr, lens = self.prepare(x, lengths, layout, absent, preprocess)
        if dense:
            return self._dense(arr, lens)
        out = []
        for start in range(0, len(arr), self.batch_size):
            xb = torch.tensor(arr[start : start + self.batch_size], device=self.device)
            lb = torch.from_numpy(lens[start : start + self.batch_size]).to(self.device)
            view = centre_crop_resize(xb, lb, out_len=self.loaded.view_frames, ratio=self.crop_ratio)
            view = to_stream(view, self.loaded.stream, self.layout)
            out.append(self.module.forward_features(view).float().cpu())
        return torch.cat(out).numpy()

    def _dense(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        from pcm3.tasks.detection_features import frame_features

        feats = frame_features(self.module, ClipSequences(x, lengths, self.layout), self.loaded.stream,
                               self.dense_options, self.device)  # type: ignore[arg-type]
        out = np.zeros((len(x), x.shape[2], feats[0].shape[1]), dtype=np.float32)
        for i, f in enumerate(feats):
            out[i, : len(f)] = f.cpu().numpy()
        return out


def load_encoder(path: str | Path, device: str | torch.device = "cpu", **options: Any) -> Embedder:
    """An :class:`Embedder` for the encoder at ``path`` (a pcm3 checkpoint ``.pt`` or an exported
    ``.safetensors``); ``options`` go to :class:`Embedder` (``batch_size``, ``crop_ratio``, ...)."""
    from pcm3.tasks.encoders import load_encoder as load_loaded

    return Embedder(load_loaded(path), device, **options)
