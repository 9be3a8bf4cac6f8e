import pytest
import torch

from pcm3.config import from_dict, load_config, to_dict
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.models.encoder_files import save_encoder
from pcm3.tasks.base import TaskContext, get_task
from pcm3.tasks.encoders import load_encoder, random_encoder
from pcm3.tasks.ensemble import stream_keys

from ..conftest import HANDS8, TINY_MODEL


def save_random_encoder(path, layout, stream, seed):
    """A random-init tiny encoder written like ``pcm3 export`` writes one."""
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, f"stream={stream}"])
    encoder = random_encoder(cfg, layout, 3, 2, seed=seed)
    return save_encoder(encoder.encoder, path, {"pcm3_config": to_dict(cfg)})


def _run(task, encoder, store_path, **overrides):
    spec = get_task(task)
    ctx = TaskContext(encoder, store_path, torch.device("cpu"), 0)
    return spec.run(ctx, from_dict(spec.config, {"epochs": 4, **overrides}))


@pytest.fixture(scope="module")
def three_streams(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streams")
    return [save_random_encoder(folder / f"{s}.safetensors", HANDS8, s, seed)
            for seed, s in enumerate(("joint", "motion", "bone"))]


def test_three_streams_fused(three_streams, tiny_store_path):
    joint, motion, bone = three_streams
    loaded = load_encoder(joint)
    others = [str(motion), str(bone)]
    metrics = _run("ensemble", loaded, tiny_store_path, encoders=others)
    assert set(metrics) == {"top1_joint", "top1_motion", "top1_bone", "top1_fused"}
    assert all(0.0 <= v <= 100.0 for v in metrics.values())
    # a stream's number is the linear task's number for that encoder (same seed and head config)
    assert metrics["top1_motion"] == _run("linear", load_encoder(motion), tiny_store_path)["top1"]


def test_fusion_adds_the_weighted_scores(three_streams, tiny_store_path, monkeypatch):
    """Heads replaced by known scores (8 test clips, all of class 2)."""
    import numpy as np

    import pcm3.tasks.ensemble as ensemble

    per_stream = [[0.9, 0.1, 0.0], [0.0, 0.6, 0.4], [0.0, 0.3, 0.7]]  # joint, motion, bone
    monkeypatch.setattr(ensemble, "evaluation_labels", lambda store: np.full(8, 2))
    encoders = [load_encoder(p) for p in three_streams]

    def fuse(weights):
        scores = iter(torch.tensor([row] * 8) for row in per_stream)
        monkeypatch.setattr(ensemble, "predict_scores", lambda head, features, softmax=True: next(scores))
        cfg = from_dict(ensemble.EnsembleConfig, {"epochs": 1, "encoders": ["m", "b"], "weights": weights})
        return ensemble.fuse_streams(encoders, tiny_store_path, cfg, 0, torch.device("cpu"))

    equal = fuse(None)  # sums 0.9, 1.0, 1.1: class 2 although only the bone stream says so
    assert (equal["top1_joint"], equal["top1_motion"], equal["top1_bone"]) == (0.0, 0.0, 100.0)
    assert equal["top1_fused"] == 100.0
    assert fuse([2.0, 1.0, 1.0])["top1_fused"] == 0.0  # sums 1.8, 1.1, 1.1: class 0


def test_config_checks_and_keys(tiny_store_path, three_streams):
    with pytest.raises(ConfigError, match="weights needs 3 values"):
        from_dict(get_task("ensemble").config, {"encoders": ["a", "b"], "weights": [1.0]})
    with pytest.raises(ConfigError, match="needs the other streams' encoders"):
        _run("ensemble", load_encoder(three_streams[0]), tiny_store_path)
    loaded = load_encoder(three_streams[0])
    assert stream_keys([loaded, load_encoder(three_streams[1]), loaded]) == [
        "top1_joint_0", "top1_motion", "top1_joint_2"]
