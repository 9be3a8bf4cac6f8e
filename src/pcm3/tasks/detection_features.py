"""Per-frame features of untrimmed sequences from a frozen encoder, in two modes.

- ``sequence``: every frame's feature comes from ONE causal pass (``forward_dense``) over the
  whole sequence; the stream modality is computed on the whole sequence. A frame is read at the
  dense step covering it (step ``t // time_stride`` of a strided backbone). A backbone that is
  not causal (its steps see the future) needs ``sequence_context > 0``: it is then run over the
  overlapping chunks described below, each frame read from the chunk where it has ``c`` frames
  of past (and at most the rest of its chunk as future); with ``sequence_context = 0`` it is
  refused, since one pass would let every frame see the whole recording. Sequences of similar
  length are batched (padded; outputs past a sequence's length are dropped) with at most
  ``max_batch_frames`` padded frames per call, so memory stays bounded. With
  ``sequence_stride = s > 1`` a sequence is split into its ``s`` interleaved sub-sequences
  (frames ``o, o + s, ...``), each encoded in one pass (its stream computed on the sub-sequence,
  as on a subsampled clip): every frame still gets exactly one feature, at the temporal scale of
  ``s``-times subsampled clips, for the cost of one pass. With ``sequence_lookahead = d`` raw
  frames, frame ``t``'s feature is read at the causal output of its sub-sequence's last step at
  or before ``t + d`` (clamped to the end), so it has seen ``d`` frames of the future, as a window
  centred on ``t`` has (``window_frames / 2``), still for the cost of one pass. With
  ``sequence_context = c`` raw frames the causal state does not run over the whole recording:
  each sub-sequence is encoded in overlapping chunks of ``2c`` frames every ``c`` frames (all
  chunks batched), and every frame is read from the chunk where it has at least ``c`` frames of
  past (as a window of ``c`` frames would give it), for about twice the cost of one pass.
- ``window``: the official Simple-Skeleton-Detection inference: for frame ``t`` a window of
  ``window_frames`` raw frames centred at ``t``, clamped to the sequence, every
  ``window_stride``-th frame kept (64 / 4 -> 16 frames); the stream of the window, and frame
  ``t``'s feature = a causal encoder's output at the window's last step (official), or the
  window's sequence feature (``forward_features``) for any other backbone. Many windows (from
  several sequences) go through the encoder in one call.

The ``raw`` reference encoder (:class:`~pcm3.tasks.base.RawCoordinates`) gives the frame's
coordinates in ``sequence`` mode and the flattened window coordinates in ``window`` mode.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from pcm3.data.store import UntrimmedStore
from pcm3.errors import ConfigError
from pcm3.modalities import to_stream
from pcm3.tasks.base import RawCoordinates

FEATURE_MODES = ("sequence", "window")

# (sequence index in the store, frame indices (n,) int64, features (n, D) float32 on the device)
FramePiece = tuple[int, np.ndarray, Tensor]


@dataclass(frozen=True)
class FrameFeatureOptions:
    """How per-frame features are computed (see the module docstring)."""

    mode: str = "sequence"
    window_frames: int = 64
    window_stride: int = 4
    sequence_stride: int = 1
    sequence_lookahead: int = 0
    sequence_context: int = 0
    max_batch_frames: int = 16384
    window_batch: int = 512


def official_window_indices(frames: np.ndarray, length: int, window_frames: int = 64,
                            stride: int = 4) -> np.ndarray:
    """``(n, ceil(window_frames / stride))`` source frames of the windows of ``frames`` ``(n,)``.

    Official ``sliding_window_crop_downsample``: the window ``[s, s + window_frames)`` with
    ``s = clip(t - window_frames // 2, 0, length - window_frames)``, every ``stride``-th frame.
    A sequence shorter than the window starts at 0 and repeats its last frame (the official
    code reads the zero padding of its batch array there).
    """
    frames = np.asarray(frames, dtype=np.int64)
    start = np.clip(frames - window_frames // 2, 0, max(length - window_frames, 0))
    steps = np.arange(0, window_frames, stride, dtype=np.int64)
    return np.minimum(start[:, None] + steps[None, :], length - 1)


def _encode_windows(encoder: nn.Module, windows: Tensor) -> Tensor:
    """``(N, C, w, V, M) -> (N, D)``: a causal encoder's last-step output; the sequence feature
    of a non-causal one; the flattened window for raw coordinates."""
    if isinstance(encoder, RawCoordinates) or not encoder.causal:
        return encoder.forward_features(windows)
    return encoder.forward_dense(windows)[:, -1]


def check_sequence_mode(encoder: nn.Module, opts: FrameFeatureOptions) -> None:
    """Refuse sequence mode without chunks for an encoder that is not causal (see the module docstring)."""
    if opts.mode == "sequence" and not encoder.causal and opts.sequence_context <= 0:
        raise ConfigError("detection features=sequence needs a causal encoder for one pass over each "
                          "recording; this encoder's steps see the future: set sequence_context=N (chunks "
                          "of 2N frames, each frame with N frames of past) or features=window")


def _window_pieces(encoder: nn.Module, store: UntrimmedStore, stream: str, opts: FrameFeatureOptions,
                   device: torch.device, frames: Sequence[np.ndarray]) -> Iterator[FramePiece]:
    pending: list[tuple[int, np.ndarray, Tensor]] = []

    def flush() -> Iterator[FramePiece]:
        feats = _encode_windows(encoder, torch.cat([w for _, _, w in pending])).float()
        start = 0
        for seq, idx, windows in pending:
            yield seq, idx, feats[start : start + len(windows)]
            start += len(windows)
        pending.clear()

    for i, selected in enumerate(frames):
        if len(selected) == 0:
            continue
        seq = torch.tensor(store.sequence(i), device=device)  # (C, T, V, M)
        for lo in range(0, len(selected), opts.window_batch):
            chunk = selected[lo : lo + opts.window_batch]
            idx = official_window_indices(chunk, seq.shape[1], opts.window_frames, opts.window_stride)
            windows = seq[:, torch.from_numpy(idx).to(device)].permute(1, 0, 2, 3, 4)  # (n, C, w, V, M)
            pending.append((i, chunk, to_stream(windows, stream, store.layout)))
            if sum(len(w) for _, _, w in pending) >= opts.window_batch:
                yield from flush()
    if pending:
        yield from flush()


def sequence_chunks(steps: int, context: int) -> list[tuple[int, int]]:
    """``(first step, steps)`` of the chunks an ``steps``-step sub-sequence is encoded in.

    ``context = 0``: one chunk, the whole sub-sequence. Otherwise chunks of ``2 * context``
    steps every ``context`` steps; step ``j`` is read from chunk :func:`chunk_of_step`, where it
    has at least ``context`` earlier steps (except near the start of the sequence).
    """
    if context <= 0 or steps <= 2 * context:
        return [(0, steps)]
    return [(k * context, min(2 * context, steps - k * context)) for k in range((steps - 1) // context)]


def chunk_of_step(step: np.ndarray, context: int) -> np.ndarray:
    """Index (into :func:`sequence_chunks`) of the chunk each step is read from."""
    return np.zeros_like(step) if context <= 0 else np.maximum(step // context - 1, 0)


def _sequence_pieces(encoder: nn.Module, store: UntrimmedStore, stream: str, opts: FrameFeatureOptions,
                     device: torch.device, frames: Sequence[np.ndarray]) -> Iterator[FramePiece]:
    s, stride = opts.sequence_stride, encoder.time_stride
    context = -(-opts.sequence_context // s)  # in steps of the sub-sequence
    lengths = store.lengths
    # pieces: (sequence, offset o of the sub-sequence o, o + s, ..., its steps, chunk, first step)
    pieces: list[tuple[int, int, int, int, int]] = []
    piece_steps: list[int] = []
    for i in range(len(store)):
        if not len(frames[i]):
            continue
        for o in range(min(s, int(lengths[i]))):
            steps = len(range(o, int(lengths[i]), s))
            for k, (first, length) in enumerate(sequence_chunks(steps, context)):
                pieces.append((i, o, steps, k, first))
                piece_steps.append(length)
    piece_len = np.array(piece_steps, dtype=np.int64)
    order = np.argsort(-piece_len, kind="stable")  # longest first: similar lengths share a batch
    batches: list[list[int]] = []
    for p in order:
        if batches and (len(batches[-1]) + 1) * piece_len[batches[-1][0]] <= opts.max_batch_frames:
            batches[-1].append(int(p))
        else:
            batches.append([int(p)])
    # per sub-sequence, computed once: its wanted frames, the step each is read at, that step's chunk
    reads: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def read_plan(i: int, o: int, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if (i, o) not in reads:
            wanted = frames[i][frames[i] % s == o]
            step = np.minimum((wanted - o + opts.sequence_lookahead) // s, steps - 1)
            reads[i, o] = (wanted, step, chunk_of_step(step, context))
        return reads[i, o]

    for batch in batches:
        sequences: dict[int, Tensor] = {}
        streams: dict[tuple[int, int], Tensor] = {}
        views = []
        for p in batch:
            i, o, _, _, first = pieces[p]
            if (i, o) not in streams:
                if i not in sequences:
                    sequences[i] = torch.tensor(store.sequence(i), device=device)
                sub = sequences[i][None, :, o::s]
                streams[i, o] = to_stream(sub, stream, store.layout)[0]  # (C, steps, V, M)
            views.append(streams[i, o][:, first : first + piece_len[p]])
        t_max = int(piece_len[batch[0]])
        x = views[0].new_zeros((len(views), views[0].shape[0], t_max, *views[0].shape[2:]))
        for row, view in enumerate(views):
            x[row, :, : view.shape[1]] = view
        lens = torch.as_tensor(piece_len[batch], device=device)
        dense = encoder.forward_dense(x, lens).float()  # (B, ceil(t_max / time_stride), D)
        for row, p in enumerate(batch):
            i, o, steps, k, first = pieces[p]
            wanted, step, chunk = read_plan(i, o, steps)
            lo, hi = np.searchsorted(chunk, [k, k + 1])  # chunk is non-decreasing in the frame
            at = (step[lo:hi] - first) // stride  # the encoder step covering that sub-sequence step
            yield i, wanted[lo:hi], dense[row, torch.from_numpy(at).to(device)]


@torch.no_grad()
def iter_frame_features(encoder: nn.Module, store: UntrimmedStore, stream: str, opts: FrameFeatureOptions,
                        device: torch.device, frames: Sequence[np.ndarray] | None = None,
                        ) -> Iterator[FramePiece]:
    """Features of the frames ``frames[i]`` (sorted ``(n_i,)`` indices; None = every frame) of
    every sequence ``i`` of ``store``, as pieces ``(i, frame indices, (n, D) features)``.

    A sequence may arrive in several pieces, in any order; each wanted frame arrives exactly
    once. ``encoder`` must already be in eval mode (it is not changed here).
    """
    if opts.mode not in FEATURE_MODES:
        raise ConfigError(f"unknown feature mode {opts.mode!r}; expected one of {list(FEATURE_MODES)}")
    if frames is None:
        frames = [np.arange(int(t), dtype=np.int64) for t in store.lengths]
    frames = [np.asarray(f, dtype=np.int64) for f in frames]
    if any(np.any(np.diff(f) <= 0) for f in frames):
        raise ConfigError("frame features: the wanted frames of each sequence must be strictly increasing")
    check_sequence_mode(encoder, opts)
    make = _sequence_pieces if opts.mode == "sequence" else _window_pieces
    yield from make(encoder, store, stream, opts, device, frames)


def frame_features(encoder: nn.Module, store: UntrimmedStore, stream: str, opts: FrameFeatureOptions,
                   device: torch.device, frames: Sequence[np.ndarray] | None = None) -> list[Tensor]:
    """Per sequence ``i``, the ``(len(frames[i]), D)`` features of its wanted frames, in order."""
    wanted = ([np.arange(int(t), dtype=np.int64) for t in store.lengths] if frames is None
              else [np.asarray(f, dtype=np.int64) for f in frames])
    parts: list[list[tuple[np.ndarray, Tensor]]] = [[] for _ in wanted]
    for i, idx, feats in iter_frame_features(encoder, store, stream, opts, device, wanted):
        parts[i].append((idx, feats))
    out = []
    for w, pieces in zip(wanted, parts, strict=True):
        if not pieces:
            out.append(torch.zeros((0, 0), device=device))
            continue
        feats = torch.cat([f for _, f in pieces])
        position = np.searchsorted(w, np.concatenate([idx for idx, _ in pieces]))
        ordered = torch.empty_like(feats)
        ordered[torch.from_numpy(position).to(feats.device)] = feats
        out.append(ordered)
    return out
