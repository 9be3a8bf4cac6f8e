"""Official checkpoints of PCM3, CMD, SkeletonCLR / AimCLR and MAMP (exact official names and shapes,
random values) load through ``load_encoder`` into encoders that compute the official forward."""

from __future__ import annotations

import pytest
import torch

from pcm3.errors import ConfigError, Pcm3Error
from pcm3.layouts import NTU25
from pcm3.models.official_formats import detect_format
from pcm3.tasks.encoders import load_encoder

from .conftest import OfficialBIGRU, official_flatten
from .official_checkpoints import (
    official_mamp,
    official_pcm3,
    official_stgcn,
    save_aimclr,
    save_cmd,
    save_mamp,
    save_pcm3,
)

ATOL = 1e-5


def _clip(frames: int, n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, frames, NTU25.num_joints, 2, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("fmt", ["auto", "official-skeletonclr", "official-aimclr"])
def test_stgcn_checkpoint_computes_the_official_forward(tmp_path, fmt):
    reference = official_stgcn()
    enc = load_encoder(save_aimclr(tmp_path / "epoch300_model.pt", reference), fmt)
    spec = enc.spec
    assert spec.backbone == "stgcn" and spec.layout.name == "ntu25" and spec.view_frames == 50
    assert (spec.in_channels, spec.num_persons) == (3, 2)
    assert spec.options["partition"] == "spatial_one_hop" and spec.options["base_channels"] == 2
    assert enc.config["method"] == ("official-skeletonclr" if fmt == "auto" else fmt)
    ignored = enc.config["official_checkpoint"]["ignored"]
    assert "encoder_q.fc.0.weight" in ignored and "encoder_k.data_bn.weight" in ignored and "queue" in ignored
    assert "encoder_q.A" in ignored and not any(k.startswith("encoder_q.st_gcn") for k in ignored)
    x = _clip(12)
    with torch.no_grad():
        torch.testing.assert_close(enc.encoder.forward_features(x), reference(x), atol=ATOL, rtol=0)


def test_mamp_checkpoint_computes_the_official_forward(tmp_path):
    reference = official_mamp(frames=16)
    enc = load_encoder(save_mamp(tmp_path / "checkpoint-399.pth", reference))
    spec = enc.spec
    assert spec.backbone == "transformer" and spec.view_frames == 16 and spec.num_persons == 2
    assert spec.options["depth"] == 2 and spec.options["num_heads"] == 8 and spec.options["mlp_ratio"] == 2.0
    assert enc.config["method"] == "official-mamp"
    assert {"mask_token", "decoder_embed.weight"} <= set(enc.config["official_checkpoint"]["ignored"])
    x = _clip(16)
    with torch.no_grad():
        torch.testing.assert_close(enc.encoder.forward_features(x), reference(x), atol=ATOL, rtol=0)


def test_pcm3_checkpoint_computes_the_official_forward(tmp_path):
    moco = official_pcm3()
    enc = load_encoder(save_pcm3(tmp_path / "checkpoint_0450.pth.tar", moco))
    assert enc.spec.backbone == "bigru" and enc.spec.view_frames == 64
    assert enc.spec.options == {"hidden_size": 4, "num_layers": 2, "bidirectional": False, "pooling": "last"}
    assert enc.config["method"] == "official-pcm3"
    assert "recons_decoder.reconstruction.weight" in enc.config["official_checkpoint"]["ignored"]
    x = _clip(7)
    with torch.no_grad():
        reference = moco.encoder_q.frames(official_flatten(x))[:, -1]
        torch.testing.assert_close(enc.encoder.forward_features(x), reference, atol=ATOL, rtol=0)


@pytest.mark.parametrize("stream", ["joint", "motion", "bone"])
def test_cmd_checkpoint_loads_the_encoder_of_the_stream(tmp_path, stream):
    torch.manual_seed(0)
    streams = {s: OfficialBIGRU(150, 4, 2).eval() for s in ("joint", "motion", "bone")}
    path = save_cmd(tmp_path / "cmd.pth.tar", streams)
    enc = load_encoder(path, stream=stream)
    assert enc.config["method"] == "official-cmd" and enc.stream == stream
    x = _clip(6)
    with torch.no_grad():
        reference = streams[stream].frames(official_flatten(x))[:, -1]
        torch.testing.assert_close(enc.encoder.forward_features(x), reference, atol=ATOL, rtol=0)


def test_unknown_format_is_refused_with_the_formats_and_keys(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"net": {"backbone.layer1.weight": torch.zeros(2)}}, path)
    with pytest.raises(ConfigError, match=r"unrecognised.*official-mamp.*keys seen: \['net'\]"):
        load_encoder(path)
    with pytest.raises(Pcm3Error, match=r"unknown encoder format 'mamp'.*official-mamp"):
        load_encoder(path, "mamp")


def test_missing_and_unexpected_encoder_keys_are_listed(tmp_path):
    reference = official_stgcn()
    path = save_aimclr(tmp_path / "a.pt", reference)
    state = torch.load(path, weights_only=True)
    del state["encoder_q.st_gcn_networks.3.tcn.2.bias"], state["encoder_q.data_bn.running_var"]
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"missing keys: encoder_q\.data_bn\.running_var \(75,\), "
                                          r"encoder_q\.st_gcn_networks\.3\.tcn\.2\.bias"):
        load_encoder(path)
    state = torch.load(save_aimclr(path, reference), weights_only=True)
    state["encoder_q.st_gcn_networks.2.gcn.extra"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"no place for: 'encoder_q\.st_gcn_networks\.2\.gcn\.extra'"):
        load_encoder(path)


def test_wrong_shape_and_other_graph_are_refused(tmp_path):
    path = save_aimclr(tmp_path / "a.pt", official_stgcn())
    state = torch.load(path, weights_only=True)
    state["encoder_q.A"] = state["encoder_q.A"].flip(1)
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"graph encoder_q\.A differs"):
        load_encoder(path)
    moco = official_pcm3()
    path = save_pcm3(tmp_path / "p.pt", moco)
    state = torch.load(path, weights_only=True)
    state["state_dict"]["module.encoder_q.input_norm.bias"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"input_norm\.bias"):
        load_encoder(path)


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_a_file_that_needs_code_execution_is_refused_naming_it(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"encoder_q.input_norm.weight": torch.zeros(2)}, "x": _Payload()}, path)
    with pytest.raises(Pcm3Error, match=rf"{path.name}: refused: loading this file would run code"):
        load_encoder(path, "official-pcm3")
    assert "code ran" not in capsys.readouterr().out


def test_detect_format_tells_pcm3_checkpoints_from_mamp():
    assert detect_format({"model": {"encoder.backbone.x": torch.zeros(1)}, "config": {}}, "f") == "pcm3"
    assert detect_format({"model": {"joints_embed.proj.weight": torch.zeros(1)}}, "f") == "official-mamp"
    assert detect_format({"module.encoder_q.st_gcn_networks.0.gcn.conv.weight": torch.zeros(1)}, "f") \
        == "official-skeletonclr"
    with pytest.raises(ConfigError, match=r"keys seen: \['list'\]"):
        detect_format([1, 2], "f")


def test_an_official_checkpoint_exports_to_safetensors_with_its_spec(tmp_path):
    from pcm3.tasks.encoders import export_encoder

    reference = official_mamp(frames=16)
    out = export_encoder(save_mamp(tmp_path / "checkpoint-399.pth", reference), tmp_path / "mamp.safetensors")
    enc = load_encoder(out)
    assert enc.spec.backbone == "transformer" and enc.config["method"] == "official-mamp"
    x = _clip(16)
    with torch.no_grad():
        torch.testing.assert_close(enc.encoder.forward_features(x), reference(x), atol=ATOL, rtol=0)
