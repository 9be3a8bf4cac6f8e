"""ONNX export of every registered backbone, run with onnxruntime against PyTorch's eval output on
clips of other lengths and batch sizes than the traced example (padding past ``lengths``
included), with the input prompt, the spec in the metadata and a clear error without ``onnx``."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from pcm3.config import to_dict
from pcm3.errors import Pcm3Error
from pcm3.layouts import COCO17
from pcm3.models.encoder import EncoderSpec, build_encoder
from pcm3.models.onnx_export import export_onnx, read_onnx_spec
from pcm3.models.registry import get_backbone, known_backbones

from ..conftest import FrameMLP  # noqa: F401  (registers the test-only backbone)

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

# (N, T, lengths): T below, above and at a multiple of every tiny time stride; full and padded clips
CLIPS = [(3, 11, [11, 4, 1]), (1, 24, [24]), (2, 16, [16, 9])]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: faster on one thread


def variants() -> list[tuple[str, dict]]:
    """Every registered backbone at its tiny size, and the true bidirectional GRU (packed sequences)."""
    out = [(name, to_dict(get_backbone(name).options.tiny())) for name in known_backbones()]
    return [*out, ("bigru", {**to_dict(get_backbone("bigru").options.tiny()), "bidirectional": True})]


VARIANTS = variants()


def tiny_encoder(name: str, options: dict | None = None, seed: int = 0):
    """A tiny random encoder on COCO17, 2 persons, 3 channels, with a random input prompt and
    non-trivial BatchNorm statistics (so the export of both is checked)."""
    torch.manual_seed(seed)
    options = to_dict(get_backbone(name).options.tiny()) if options is None else options
    spec = EncoderSpec(name, options, 3, 2, COCO17, view_frames=16)
    shape = build_encoder(spec).backbone.input_prompt_shape
    encoder = build_encoder(spec, 5.0 * torch.randn(1, *shape))
    for module in encoder.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    return encoder.eval()


@pytest.mark.parametrize(("name", "options"), VARIANTS,
                         ids=[f"{n}-{'bidir' if o.get('bidirectional') else 'tiny'}" for n, o in VARIANTS])
def test_onnxruntime_matches_pytorch_with_spec_in_metadata(name, options, tmp_path):
    encoder = tiny_encoder(name, options).train()
    path = export_onnx(encoder, tmp_path / f"{name}.onnx", {"step": 3, "note": "hello"})
    assert encoder.training  # the mode it had
    encoder.eval()
    spec, meta = read_onnx_spec(path)
    assert spec.to_dict() == encoder.spec.to_dict()
    assert (meta["step"], meta["note"]) == ("3", "hello")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x", "lengths"]
    g = torch.Generator().manual_seed(1)
    for n, t, lengths in CLIPS:
        x = torch.randn(n, 3, t, COCO17.num_joints, 2, generator=g)
        lens = torch.tensor(lengths)
        with torch.no_grad():
            expected = encoder.forward_features(x, lens).numpy()
            unprompted = encoder.backbone.forward_features(x, lens).numpy()
        got = session.run(None, {"x": x.numpy(), "lengths": lens.numpy()})[0]
        assert got.shape == (n, encoder.feature_dim)
        assert np.abs(got - expected).max() <= 1e-4, (name, n, t)
        assert np.abs(got - unprompted).max() > 1e-3  # the input prompt is in the graph
        padded = x.clone()
        padded[0, :, lengths[0]:] = 100.0  # frames past the length change nothing
        padded_out = session.run(None, {"x": padded.numpy(), "lengths": lens.numpy()})[0]
        assert np.abs(padded_out - got).max() <= 1e-4


def test_missing_onnx_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(Pcm3Error, match=r"pip install 'pcm3\[onnx\]'"):
        export_onnx(tiny_encoder("bigru"), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter's notice
def test_not_a_pcm3_export_is_refused(tmp_path):
    import onnx

    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(plain), dynamo=False)
    assert onnx.load(str(plain))
    with pytest.raises(Pcm3Error, match="not a pcm3 ONNX export"):
        read_onnx_spec(plain)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(Pcm3Error, match="cannot read ONNX file"):
        read_onnx_spec(tmp_path / "junk.onnx")


def test_the_onnx_guide_runs_as_written(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    from pcm3.layouts import NTU25

    doc = (Path(__file__).resolve().parents[2] / "docs" / "embedding.md").read_text()
    (code,) = re.findall(r"## ONNX\n.*?```python\n(.*?)```", doc, flags=re.S)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    encoder = build_encoder(EncoderSpec("bigru", {"hidden_size": 4, "num_layers": 1}, 3, 2, NTU25)).eval()
    export_onnx(encoder, "ntu60.onnx")
    namespace: dict = {}
    exec(code, namespace)
    with torch.no_grad():
        expected = encoder.forward_features(torch.zeros(4, 3, 64, 25, 2)).numpy()
    assert np.abs(namespace["features"] - expected).max() <= 1e-4
