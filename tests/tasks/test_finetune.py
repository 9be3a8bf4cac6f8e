import numpy as np
import pytest
import torch

from pcm3.config import from_dict, load_config
from pcm3.data import Converted, Sample, open_store, write_store
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.layouts import NTU25
from pcm3.tasks.base import TaskContext, get_task, raw_encoder
from pcm3.tasks.encoders import random_encoder
from pcm3.tasks.features import split_pair
from pcm3.tasks.finetune import (
    FinetuneConfig,
    _train_view,
    finetune_encoder,
    train_classifier,
)

from ..conftest import HANDS8, TINY_MODEL, tiny_store_path  # noqa: F401

CPU = torch.device("cpu")
QUICK = FinetuneConfig(epochs=3, milestones=[2], batch_size=8)


def tiny_encoder(seed: int = 0):
    return random_encoder(load_config(PretrainConfig, None, TINY_MODEL), HANDS8, 3, 2, seed=seed)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_training_view_is_a_crop_of_view_length_in_the_stream(tiny_store_path):  # noqa: F811
    train, _ = split_pair(open_store(tiny_store_path), None, None)
    enc = tiny_encoder()
    x = torch.randn(4, 3, 30, 8, 2)
    lengths = torch.tensor([30, 20, 12, 16])
    view = _train_view(x, lengths, enc, train, QUICK, torch.Generator().manual_seed(0))
    assert view.shape == (4, 3, 16, 8, 2)
    enc.stream = "motion"
    motion = _train_view(x, lengths, enc, train, QUICK, torch.Generator().manual_seed(0))
    torch.testing.assert_close(motion[:, :, :-1], view[:, :, 1:] - view[:, :, :-1])


def test_fine_tuning_changes_a_copy_never_the_callers_encoder(tiny_store_path):  # noqa: F811
    train, _ = split_pair(open_store(tiny_store_path), None, None)
    enc = tiny_encoder()
    before = _state(enc.encoder)
    model = train_classifier(enc, train, QUICK, seed=0, device=CPU)
    after = _state(enc.encoder)
    assert before.keys() == after.keys()
    for key in before:
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=0)
    assert not enc.encoder.training and not model.training
    tuned = model.encoder.state_dict()
    changed = [k for k in before if not torch.equal(tuned[k], before[k])]
    assert "backbone.input_norm.running_mean" in changed  # trained in train mode
    assert any("weight" in k and "input_norm" not in k for k in changed)  # the GRU weights moved


def test_a_separable_problem_is_learned_with_the_raw_encoder(tiny_store_path):  # noqa: F811
    train, test = split_pair(open_store(tiny_store_path), None, None)
    raw = raw_encoder(HANDS8, 3, 2, frames=16)
    cfg = FinetuneConfig(epochs=20, milestones=[15], batch_size=8, lr=0.05)
    assert finetune_encoder(raw, train, test, cfg, seed=0, device=CPU) == {"top1": 100.0, "top5": 100.0}


def test_the_whole_network_learns_a_separable_problem(tiny_store_path):  # noqa: F811
    train, test = split_pair(open_store(tiny_store_path), None, None)
    cfg = FinetuneConfig(epochs=30, milestones=[24], batch_size=8, lr=0.1)
    assert finetune_encoder(tiny_encoder(), train, test, cfg, seed=0, device=CPU)["top1"] >= 87.5


def test_deterministic_given_the_seed(tiny_store_path):  # noqa: F811
    train, _ = split_pair(open_store(tiny_store_path), None, None)
    enc = tiny_encoder()
    a, b, c = (_state(train_classifier(enc, train, QUICK, seed=s, device=CPU)) for s in (3, 3, 4))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_train_indices_restrict_the_training_clips(tiny_store_path):  # noqa: F811
    train, _ = split_pair(open_store(tiny_store_path), None, None)
    enc = tiny_encoder()
    full = _state(train_classifier(enc, train, QUICK, seed=0, device=CPU))
    part = _state(train_classifier(enc, train, QUICK, seed=0, device=CPU, train_indices=np.arange(6)))
    assert any(not torch.equal(full[k], part[k]) for k in full)


def test_bf16_and_the_registered_task(tiny_store_path):  # noqa: F811
    spec = get_task("finetune")
    cfg = from_dict(spec.config, {"epochs": 1, "milestones": [], "batch_size": 8, "precision": "bf16"})
    metrics = spec.run(TaskContext(tiny_encoder(), tiny_store_path, CPU, seed=0), cfg)
    assert set(metrics) == {"top1", "top5"} and 0.0 <= metrics["top1"] <= 100.0


@pytest.mark.filterwarnings("ignore::pcm3.engine.precision.SlowPrecisionWarning")
def test_auto_precision_follows_the_hardware(tiny_store_path, monkeypatch):  # noqa: F811
    from dataclasses import replace

    from ..engine.hardware_fakes import AVX2_ONLY, AVX512_BF16, use_probe

    train, _ = split_pair(open_store(tiny_store_path), None, None)
    enc = tiny_encoder()
    assert FinetuneConfig().precision == "auto"
    one = replace(QUICK, epochs=1, milestones=[])
    weights = {p: _state(train_classifier(enc, train, replace(one, precision=p), seed=0, device=CPU))
               for p in ("fp32", "bf16")}
    assert any(not torch.equal(weights["fp32"][k], weights["bf16"][k]) for k in weights["fp32"])
    for probe, same_as in ((AVX2_ONLY, "fp32"), (AVX512_BF16, "bf16")):
        use_probe(monkeypatch, probe)
        auto = _state(train_classifier(enc, train, replace(one, precision="auto"), seed=0, device=CPU))
        for key in auto:
            torch.testing.assert_close(auto[key], weights[same_as][key], rtol=0, atol=0)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA or MPS device"):
        train_classifier(enc, train, replace(one, precision="fp16"), seed=0, device=CPU)


def test_bad_configs_and_data(tiny_store_path, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError, match="milestones increasing"):
        from_dict(FinetuneConfig, {"milestones": [70, 50]})
    with pytest.raises(ConfigError, match="unknown config key 'epoch'"):
        from_dict(FinetuneConfig, {"epoch": 3})
    train, test = split_pair(open_store(tiny_store_path), None, None)
    with pytest.raises(Pcm3Error, match="expects layout 'ntu25'"):
        finetune_encoder(raw_encoder(NTU25, 3, 2, 16), train, test, QUICK, seed=0, device=CPU)
    samples = [Sample(f"c{i}", np.zeros((3, 5, 8, 2), np.float32), -1 if i < 4 else i % 2) for i in range(8)]
    ids = [s.id for s in samples]
    write_store(tmp_path / "unlabelled", Converted(HANDS8, ["a", "b"], samples,
                                                   {"xsub/train": ids[:4], "xsub/val": ids[4:]}))
    train, test = split_pair(open_store(tmp_path / "unlabelled"), None, None)
    with pytest.raises(Pcm3Error, match="no labels in split 'xsub/train'"):
        finetune_encoder(raw_encoder(HANDS8, 3, 2, 16), train, test, QUICK, seed=0, device=CPU)
    with pytest.raises(Pcm3Error, match="none of the chosen training rows"):
        train_classifier(raw_encoder(HANDS8, 3, 2, 16), test, QUICK, seed=0, device=CPU,
                         train_indices=np.array([9]))
