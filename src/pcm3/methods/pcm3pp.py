"""PCM3++ (survey §3.2–§3.5): PCM3 plus a clip-level asymmetric contrast and an optional
post-distillation stage. Everything else is :class:`PCM3`.

Clip pair (Eq. 5 on a new positive), two readings (``pcm3pp.clip.source``):

- ``"query"`` (default): a contiguous clip of ``U{min_frames..max_frames}`` frames is cut from the
  query view (after its spatial transform) and goes through the query branch; the key branch
  encodes the whole query view, same spatial transform, as the anchor (one extra key pass)::

      q_clip = g(E(clip(view1) + base) ⊕ cl)          k_clip = g_k(E_k(view1 + base) ⊕ cl)

- ``"key"`` (the paper's notation): the clip is cut from the key view x_k and its anchor is the key
  embedding ``k`` of the sequence pairs (no extra pass)::

      q_clip = g(E(clip(view2) + base) ⊕ cl)          k_clip = k

``pcm3pp.clip.path``: ``"crop"`` (default) encodes the clips alone, padded to the longest clip of the
batch (a GRU's cost grows with the frames, so this is the cheap path); ``"mask"`` keeps the
view's length, the clip moved to frame 0 and zeros after; ``"in_place"`` keeps the view's length
and the clip at its own frames, every other frame zeroed (the survey's "we just mask for
efficiency"). Frames after the clip are padding: left out of the pooling and, in train mode, out
of BatchNorm statistics (every backbone's contract); with ``in_place`` the zeroed frames before
the clip are input the encoder sees. For the causal BiGRU in eval mode ``crop`` and ``mask`` give
the same feature. Post-distillation (Eq. 10, ``stage=post_distill``): only the
relational KL terms (sequence pairs and clip pair) train; every InfoNCE term and the masked MSE
get weight 0 unless ``post_distill_terms`` names them (the branches still run: their KL terms
need them, and the zero-weight terms are logged). Choices the text leaves open:
``docs/fidelity.md`` P1–P6.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pcm3.engine.config import PretrainConfig
from pcm3.layouts import Layout
from pcm3.methods.pcm3 import PCM3
from pcm3.methods.pcm3_options import PCM3PlusPlusOptions
from pcm3.methods.queue import MoCoQueue


def draw_clips(n: int, frames: int, min_frames: int, max_frames: int, generator: torch.Generator,
               device: torch.device) -> tuple[Tensor, Tensor]:
    """Per-sample clip ``(start, length)``, each ``(n,)`` long: length ~ U{min..max}, start ~
    U{0 .. frames - length}."""
    u = torch.rand(2, n, generator=generator, device=generator.device).to(device)
    length = min_frames + (u[0] * (max_frames - min_frames + 1)).long().clamp(max=max_frames - min_frames)
    start = (u[1] * (frames - length + 1)).long().clamp(max=frames - length).clamp(min=0)
    return start, length


def cut_clips(x: Tensor, start: Tensor, length: Tensor, out_frames: int) -> Tensor:
    """``(N, C, T, V, M) -> (N, C, out_frames, V, M)``: frames ``start .. start+length-1`` of each
    sample moved to frames ``0 .. length-1``, zeros after."""
    t = torch.arange(out_frames, device=x.device)
    source = (start.unsqueeze(1) + t).clamp(max=x.shape[2] - 1)  # (N, out_frames)
    index = source.view(x.shape[0], 1, out_frames, 1, 1).expand(-1, x.shape[1], -1, *x.shape[3:])
    valid = (t.unsqueeze(0) < length.unsqueeze(1)).view(x.shape[0], 1, out_frames, 1, 1)
    return torch.where(valid, x.gather(2, index), torch.zeros((), dtype=x.dtype, device=x.device))


class PCM3PlusPlus(PCM3):
    """PCM3 + clip-level asymmetric contrast; ``stage=post_distill`` keeps only the KL terms."""

    def __init__(self, cfg: PretrainConfig, layout: Layout, in_channels: int, num_persons: int) -> None:
        super().__init__(cfg, layout, in_channels, num_persons)
        o: PCM3PlusPlusOptions = cfg.method_options
        self.clip_queue = (MoCoQueue(o.moco.queue_size, cfg.model.embed_dim,
                                     generator=torch.Generator().manual_seed(cfg.seed + 1))
                           if o.clip.own_queue and self._clip_active else None)

    @property
    def _clip_active(self) -> bool:
        c = self.options.clip
        return c.weight > 0 or (c.kl > 0 and self.kl_weight > 0)

    @property
    def has_unused_parameters(self) -> bool:
        return super().has_unused_parameters or self.cfg.stage == "post_distill"

    def clip_views(self, views: dict[str, Tensor], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """The clips ``(N, C, T', V, M)`` of the ``clip.source`` views (``clip.path`` padding) and
        the valid frames ``(N,)`` the encoder pools over (frames after the clip are padding)."""
        c = self.options.clip
        view = views[c.source]
        n, frames = view.shape[0], view.shape[2]
        start, length = draw_clips(n, frames, c.min_frames, c.max_frames, generator, view.device)
        if c.path == "in_place":
            t = torch.arange(frames, device=view.device)
            inside = (t >= start.unsqueeze(1)) & (t < (start + length).unsqueeze(1))  # (N, T)
            return view * inside.view(n, 1, frames, 1, 1).to(view.dtype), start + length
        out = frames if c.path == "mask" else int(length.max())
        return cut_clips(view, start, length, out), length

    def extra_losses(self, views: dict[str, Tensor], generator: torch.Generator,
                     queue: Tensor, key: Tensor) -> dict[str, Tensor]:
        if not self._clip_active:
            return {}
        n = views["query"].shape[0]
        base = self._prompt_rows(["base"], n)
        if self.options.clip.source == "key":
            anchor = key
        else:
            with torch.no_grad():
                anchor = self._embed(self.key_encoder.forward_features(views["query"], input_prompt=base),
                                     generator, key=True)
        clips, lengths = self.clip_views(views, generator)
        feats = self.encoder.forward_features(clips, lengths, input_prompt=base)
        student = self._embed(feats, generator)
        clip_queue = self.clip_queue.snapshot() if self.clip_queue is not None else queue
        terms = self._contrastive_losses({"clip": (student, anchor)}, clip_queue)
        if self.clip_queue is not None:
            self.clip_queue.enqueue(anchor)
        out = {"clip": terms["clip"]}
        if "kl" in terms:
            out["clip_kl"] = terms["kl"]
        return out

    def loss_weights(self) -> dict[str, float]:
        weights = super().loss_weights()
        weights["clip"] = self.options.clip.weight
        weights["clip_kl"] = self.options.clip.kl * (self.kl_weight > 0)
        if self.cfg.stage == "post_distill":  # Eq. 10: only the distillation terms (unless kept)
            weights = {name: w if name in self.cfg.post_distill_terms else 0.0 for name, w in weights.items()}
        return weights


__all__ = ["PCM3PlusPlus", "cut_clips", "draw_clips"]
