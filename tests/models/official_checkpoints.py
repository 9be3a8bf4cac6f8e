"""Synthetic official checkpoints: exactly the official parameter names and shapes (random values,
tiny widths), saved as each code base saves them. The forwards are the reference formulations of
``benchmarks/reference_stgcn.py`` / ``reference_mamp_encoder.py`` and the frame-by-frame official
BIGRU of ``conftest.py``.

Names that differ between a reference module and the official one are renamed here, visibly:
MAMP's patch embedding ``proj`` -> ``joints_embed.proj`` and MLP ``mlp.0 / mlp.2`` -> ``mlp.fc1 / fc2``.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from pcm3.layouts import NTU25

from ..benchmark_scripts import load_benchmark
from .conftest import OfficialBIGRU, OfficialMoCo

NTU_ROOT = next(j for j in range(NTU25.num_joints) if NTU25.parents[j] == j)  # spine shoulder (21)

ref_stgcn = load_benchmark("reference_stgcn")
ref_mamp = load_benchmark("reference_mamp_encoder")


def perturbed(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and BatchNorm statistic moved off its initial value (edge importances too)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
    return model.eval()


def official_stgcn(seed: int = 0, base: int = 2, out: int = 4):
    """A reference ST-GCN with SkeletonCLR / AimCLR's names (``net.st_gcn.Model`` minus ``fc``)."""
    torch.manual_seed(seed)
    return perturbed(ref_stgcn.ReferenceSTGCN(NTU25, 3, NTU_ROOT, base_channels=base, out_channels=out), seed)


def save_aimclr(path: Path, model: nn.Module, seed: int = 0) -> Path:
    """AimCLR / SkeletonCLR pre-training state dict, saved as torchlight does (the bare OrderedDict)."""
    hidden = model.st_gcn_networks[-1].gcn.conv.out_channels // 3
    state = OrderedDict()
    for prefix in ("encoder_q.", "encoder_k."):
        state.update((prefix + k, v.clone()) for k, v in model.state_dict().items())
        state[prefix + "fc.0.weight"] = torch.randn(hidden, hidden)
        state[prefix + "fc.0.bias"] = torch.randn(hidden)
        state[prefix + "fc.2.weight"], state[prefix + "fc.2.bias"] = torch.randn(5, hidden), torch.randn(5)
    state["queue"], state["queue_ptr"] = torch.randn(5, 16), torch.zeros(1, dtype=torch.long)
    torch.save(state, path)
    return path


def official_mamp(seed: int = 0, frames: int = 16):
    torch.manual_seed(seed)
    model = ref_mamp.ReferenceMAMPEncoder(3, NTU25.num_joints, num_frames=frames, dim=16, depth=2,
                                          num_heads=8, mlp_ratio=2.0, patch_frames=4)
    return perturbed(model, seed)


def mamp_names(state: dict) -> dict:
    """Reference names -> MAMP's (``proj`` -> ``joints_embed.proj``, ``mlp.0/2`` -> ``mlp.fc1/fc2``)."""
    out = {}
    for key, value in state.items():
        key = "joints_embed." + key if key.startswith("proj.") else key
        out[key.replace(".mlp.0.", ".mlp.fc1.").replace(".mlp.2.", ".mlp.fc2.")] = value
    return out


def save_mamp(path: Path, model: nn.Module) -> Path:
    """MAMP pre-training checkpoint as ``util/misc.save_model`` writes it (with decoder and ``args``)."""
    dim = model.norm.weight.shape[0]
    state = mamp_names(model.state_dict())
    state.update({"mask_token": torch.zeros(1, 1, dim), "decoder_embed.weight": torch.randn(dim, dim),
                  "decoder_pos_embed": torch.randn(1, 1, 25, dim),
                  "decoder_pred.weight": torch.randn(12, dim)})
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "epoch": 399,
                "args": argparse.Namespace(lr=0.1, model="transformer", mask_ratio=0.9)}, path)
    return path


def official_pcm3(seed: int = 0, hidden: int = 4, layers: int = 2) -> OfficialMoCo:
    torch.manual_seed(seed)
    return OfficialMoCo(3 * NTU25.num_joints * 2, hidden, layers).eval()


def save_pcm3(path: Path, moco: nn.Module) -> Path:
    """PCM3 / CMD ``save_checkpoint``: ``{"epoch", "state_dict" (DataParallel names), "optimizer"}``."""
    state = {"module." + k: v for k, v in moco.state_dict().items()}
    torch.save({"epoch": 451, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


def save_cmd(path: Path, streams: dict[str, OfficialBIGRU]) -> Path:
    """CMD's MoCo: one query / key BIGRU per stream (``encoder_q``, ``encoder_q_motion``, ...) and queues."""
    state = {}
    for stream, bigru in streams.items():
        suffix = "" if stream == "joint" else f"_{stream}"
        for role in ("q", "k"):
            state.update((f"encoder_{role}{suffix}.{k}", v) for k, v in bigru.state_dict().items())
        state[f"queue{suffix}"] = torch.randn(5, 16)
    torch.save({"epoch": 451, "state_dict": state, "optimizer": {}}, path)
    return path
