import torch

from pcm3.cli import main
from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.errors import Pcm3Error
from pcm3.tasks.encoders import load_encoder, random_encoder

from ..conftest import HANDS8, TINY_MODEL


def test_checkpoint_and_export_give_the_same_encoder(tiny_store_path, tmp_path):
    run = tmp_path / "run"
    assert main(["pretrain", "--out", str(run), f"data={tiny_store_path}", *TINY_MODEL, "max_steps=2"]) == 0
    ckpt = run / "checkpoints" / "last.pt"
    exported = tmp_path / "enc.safetensors"
    assert main(["export", str(ckpt), "--out", str(exported)]) == 0
    a, b = load_encoder(ckpt), load_encoder(exported)
    assert a.layout == b.layout == HANDS8 and a.stream == "joint" and a.view_frames == 16
    x = torch.randn(4, 3, 16, 8, 2)
    with torch.no_grad():
        fa, fb = a.encoder.forward_features(x), b.encoder.forward_features(x)
    torch.testing.assert_close(fa, fb)
    assert not a.encoder.training and a.encoder.input_prompt is not None


def test_random_init_is_seeded_and_has_no_prompt():
    cfg = load_config(PretrainConfig, None, TINY_MODEL)
    a, b = random_encoder(cfg, HANDS8, 3, 2, seed=1), random_encoder(cfg, HANDS8, 3, 2, seed=1)
    assert a.source == "random-init" and a.encoder.input_prompt is None
    for pa, pb in zip(a.encoder.parameters(), b.encoder.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_random_init_leaves_the_global_rng_alone():
    cfg = load_config(PretrainConfig, None, TINY_MODEL)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    random_encoder(cfg, HANDS8, 3, 2, seed=1)
    torch.testing.assert_close(torch.rand(3), expected)


def test_missing_and_foreign_files(tmp_path):
    import pytest

    with pytest.raises(Pcm3Error, match="encoder file not found"):
        load_encoder(tmp_path / "nope.pt")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(Pcm3Error, match="not a pcm3 encoder export"):
        load_encoder(tmp_path / "x.safetensors")
