import numpy as np
import pytest
import torch

from pcm3.config import from_dict
from pcm3.data import Converted, Sample, open_store, write_store
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.layouts import layout_from_dict
from pcm3.tasks.base import TaskContext, get_task, raw_encoder
from pcm3.tasks.features import split_pair
from pcm3.tasks.finetune import FinetuneConfig, finetune_encoder
from pcm3.tasks.transfer import TransferConfig, check_input_shape

from ..conftest import HANDS8, make_tiny_converted, tiny_store_path  # noqa: F401
from .test_finetune import tiny_encoder

CPU = torch.device("cpu")
FINETUNE = {"epochs": 2, "milestones": [1], "batch_size": 8}


@pytest.fixture(scope="module")
def target_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("transfer") / "b"
    write_store(path, make_tiny_converted(n=30, seed=5))
    return path


def _store(path, layout, channels, persons=2):
    samples = [Sample(f"c{i}", np.zeros((channels, 6, layout.num_joints, persons), np.float32), i % 2)
               for i in range(6)]
    ids = [s.id for s in samples]
    write_store(path, Converted(layout, ["a", "b"], samples, {"xsub/train": ids[:4], "xsub/val": ids[4:]}))
    return path


def test_finetune_protocol_fine_tunes_on_the_target(tiny_store_path, target_store):  # noqa: F811
    spec = get_task("transfer")
    cfg = from_dict(spec.config, {"target": str(target_store), "finetune": FINETUNE})
    enc = tiny_encoder()
    before = {k: v.clone() for k, v in enc.encoder.state_dict().items()}
    metrics = spec.run(TaskContext(enc, tiny_store_path, CPU, seed=3), cfg)
    train, test = split_pair(open_store(target_store), None, None)
    assert len(test) == 10  # the target's own test split, not the context store's (8 clips)
    assert metrics == finetune_encoder(enc, train, test, FinetuneConfig(**FINETUNE), 3, CPU)
    assert all(torch.equal(v, enc.encoder.state_dict()[k]) for k, v in before.items())


def test_linear_protocol_runs_the_linear_task_on_the_target(tiny_store_path, target_store):  # noqa: F811
    spec = get_task("transfer")
    linear = {"epochs": 3, "milestones": [2]}
    cfg = from_dict(spec.config, {"target": str(target_store), "protocol": "linear", "linear": linear})
    enc = tiny_encoder()
    metrics = spec.run(TaskContext(enc, tiny_store_path, CPU, seed=1), cfg)
    direct = get_task("linear")
    expected = direct.run(TaskContext(enc, target_store, CPU, seed=1), from_dict(direct.config, linear))
    assert metrics == expected and set(metrics) >= {"top1", "top5"}
    with pytest.raises(ConfigError, match="unknown config key 'nope'"):
        spec.run(TaskContext(enc, tiny_store_path, CPU), from_dict(spec.config, {
            "target": str(target_store), "protocol": "linear", "linear": {"nope": 1}}))


def test_incompatible_targets_are_refused(tiny_store_path, tmp_path):  # noqa: F811
    other = layout_from_dict({"name": "stick4", "joints": ["a", "b", "c", "d"], "parents": [0, 0, 1, 2],
                              "parts": {"top": [0, 1], "bottom": [2, 3]}})
    spec = get_task("transfer")
    ctx = TaskContext(tiny_encoder(), tiny_store_path, CPU)
    target = _store(tmp_path / "stick", other, 3)
    with pytest.raises(Pcm3Error, match=r"expects layout 'hands8' \(8 joints\).* has layout 'stick4' \(4 "):
        spec.run(ctx, from_dict(spec.config, {"target": str(target)}))
    flat = _store(tmp_path / "flat", HANDS8, 2)
    with pytest.raises(Pcm3Error, match=r"expects layout 'hands8' \(8 joints\), C=3, M=2; .*flat has layout "
                                        r"'hands8' \(8 joints\), C=2, M=2"):
        spec.run(ctx, from_dict(spec.config, {"target": str(flat)}))
    with pytest.raises(Pcm3Error, match=r"raw encoder expects 48 values per frame; .* 2 channels x 8"):
        check_input_shape(raw_encoder(HANDS8, 3, 2, frames=16), open_store(flat))
    assert not ctx.encoder.encoder.training  # the probe restored the mode


def test_bad_transfer_configs(tiny_store_path):  # noqa: F811
    spec = get_task("transfer")
    ctx = TaskContext(tiny_encoder(), tiny_store_path, CPU)
    with pytest.raises(ConfigError, match="set target="):
        spec.run(ctx, from_dict(spec.config, {}))
    with pytest.raises(ConfigError, match=r"not finetune\.train_split"):
        from_dict(TransferConfig, {"target": "x", "finetune": {"train_split": "xsub/train"}})
    with pytest.raises(ConfigError, match=r"not linear\.test_split"):
        from_dict(TransferConfig, {"target": "x", "linear": {"test_split": "xsub/val"}})
    with pytest.raises(ConfigError, match="allowed values"):
        from_dict(TransferConfig, {"target": "x", "protocol": "knn"})
    with pytest.raises(Pcm3Error, match="no such store folder"):
        spec.run(ctx, from_dict(spec.config, {"target": str(tiny_store_path) + "_missing"}))
