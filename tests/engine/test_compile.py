import torch

from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.methods import build_method

from ..conftest import HANDS8, TINY_MODEL


def test_compiled_encoder_matches_eager():
    """``compile: true`` wraps the model in ``torch.compile``; the encoder must not change results."""
    cfg = load_config(PretrainConfig, None, TINY_MODEL)
    torch.manual_seed(0)
    encoder = build_method(cfg, HANDS8, 3, 2).eval().feature_encoder()
    x = torch.randn(4, 3, 16, 8, 2)
    with torch.no_grad():
        eager = encoder.forward_features(x)
        compiled = torch.compile(encoder.forward_features)(x)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
