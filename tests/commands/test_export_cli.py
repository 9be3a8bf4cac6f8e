"""``pcm3 export``: safetensors by default, ONNX with ``--onnx``, from an exported encoder."""

from __future__ import annotations

import pytest
import torch

from pcm3.cli import main
from pcm3.layouts import COCO17
from pcm3.models.encoder import EncoderSpec, build_encoder
from pcm3.models.encoder_files import read_encoder, save_encoder


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(0)
    spec = EncoderSpec("bigru", {"hidden_size": 4, "num_layers": 1}, 3, 1, COCO17, view_frames=8)
    return save_encoder(build_encoder(spec).eval(), tmp_path / "enc.safetensors", {"step": 7})


def test_safetensors_stays_the_default(exported, tmp_path):
    out = tmp_path / "again.safetensors"
    assert main(["export", str(exported), "--out", str(out)]) == 0
    again, _ = read_encoder(out)
    original, _ = read_encoder(exported)
    assert again.spec.to_dict() == original.spec.to_dict()
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), original.state_dict().values(),
                                                 strict=True))


def test_onnx_needs_the_flag(exported, tmp_path, capsys):
    assert main(["export", str(exported), "--out", str(tmp_path / "enc.onnx")]) == 2
    assert "pcm3 export --onnx" in capsys.readouterr().err
    assert not (tmp_path / "enc.onnx").exists()


def test_onnx_export_from_a_safetensors_file(exported, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from pcm3.models.onnx_export import read_onnx_spec

    out = tmp_path / "enc.onnx"
    assert main(["export", str(exported), "--onnx", "--out", str(out)]) == 0
    spec, _ = read_onnx_spec(out)
    assert spec.backbone == "bigru"
    encoder, _ = read_encoder(exported)
    x, lengths = torch.randn(2, 3, 5, COCO17.num_joints, 1), torch.tensor([5, 2])
    got = ort.InferenceSession(str(out)).run(None, {"x": x.numpy(), "lengths": lengths.numpy()})[0]
    with torch.no_grad():
        assert (torch.from_numpy(got) - encoder.forward_features(x, lengths)).abs().max() <= 1e-4
