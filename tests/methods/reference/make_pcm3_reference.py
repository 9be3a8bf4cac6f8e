"""Write ``pcm3_reference.pt``: PCM3 and PCM3++ losses and gradients on one fixed batch.

Run with the implementation to freeze (``PYTHONPATH=<checkout>/src python make_pcm3_reference.py``);
``test_pcm3_reference.py`` checks the current code against the file. Tiny models (8 joints,
BiGRU width 16), every loss term on, float64 so the comparison is tight.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.layouts import layout_from_dict
from pcm3.methods import build_method

LAYOUT = {"name": "hands8", "joints": [f"j{i}" for i in range(8)], "parents": [0, 0, 1, 2, 0, 4, 5, 6],
          "parts": {"left_arm": [0, 1, 2, 3], "right_arm": [4, 5, 6, 7]}}
OVERRIDES = ["model.bigru.hidden_size=16", "model.bigru.num_layers=2", "model.projector_hidden=32",
             "model.embed_dim=8", "model.neck_hidden=16", "model.decoder_hidden_size=16",
             "model.prompt_length=4", "moco.queue_size=32", "augment.view_frames=16",
             "augment.crop_min_frames=8", "augment.mask_segment_frames=4", "clip.min_frames=5",
             "clip.max_frames=9"]
# clips of one length: no clip padding, which since the reference was frozen stays out of the
# BatchNorm statistics (tests/methods/test_pcm3pp.py checks that change on its own)
SAME_LENGTH_CLIPS = ["clip.min_frames=12", "clip.max_frames=12"]
CASES = {"pcm3": ["method=pcm3"], "pcm3pp": ["method=pcm3pp", *SAME_LENGTH_CLIPS],
         "pcm3pp_own_queue": ["method=pcm3pp", "clip.own_queue=true", *SAME_LENGTH_CLIPS]}
STEPS = 2  # the second step sees an enqueued queue and an EMA-updated key encoder


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """``(6, 3, 24, 8, 2)`` float64 clips and their lengths ``(6,)``."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 3, 24, 8, 2, generator=g, dtype=torch.float64)
    return x, torch.randint(8, 25, (6,), generator=g)


def grad_summary(grad: torch.Tensor) -> torch.Tensor:
    """``(3 + 16,)``: sum, L2 norm and weighted sum (weights 1..n) of a gradient, then its first 16
    values (zero-padded): enough to tell gradients apart, small enough to commit."""
    flat = grad.detach().flatten()
    weights = torch.arange(1, flat.numel() + 1, dtype=flat.dtype)
    head = torch.nn.functional.pad(flat[:16], (0, max(0, 16 - flat.numel())))
    return torch.cat([torch.stack([flat.sum(), flat.norm(), (flat * weights).sum()]), head])


def run(case: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    """Losses and gradients of ``STEPS`` forward/backward passes (no optimiser step)."""
    cfg = load_config(PretrainConfig, None, [*OVERRIDES, *case])
    torch.manual_seed(0)
    method = build_method(cfg, layout_from_dict(LAYOUT), 3, 2).double().train()
    x, lengths = batch()
    out: dict[str, dict[str, torch.Tensor]] = {}
    for step in range(STEPS):
        losses = method(x, lengths, torch.Generator().manual_seed(100 + step))
        method.zero_grad(set_to_none=True)
        losses["loss"].backward()
        out[f"losses{step}"] = {k: v.detach() for k, v in losses.items()}
        out[f"grads{step}"] = {k: grad_summary(p.grad) for k, p in method.named_parameters()
                               if p.grad is not None}
    return out


if __name__ == "__main__":
    torch.use_deterministic_algorithms(True)
    result = {name: run(case) for name, case in CASES.items()}
    torch.save(result, Path(__file__).with_name("pcm3_reference.pt"))
    print({name: {k: float(v) for k, v in r["losses1"].items()} for name, r in result.items()})
