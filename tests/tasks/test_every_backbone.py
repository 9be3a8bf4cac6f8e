"""Every downstream task, through ``pcm3 bench``, on every registered backbone (an exported
random-init encoder of its ``tiny()`` size, and the bench's own random-init reference built
from that file's spec); detection's sequence mode on a causal and a non-causal backbone."""

from __future__ import annotations

import pytest
import torch

from pcm3.config import from_dict, load_config
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.models.encoder_files import save_encoder
from pcm3.models.registry import known_backbones
from pcm3.tasks.base import TaskContext
from pcm3.tasks.bench import BenchConfig, run_bench
from pcm3.tasks.detection import DetectionConfig, run_detection
from pcm3.tasks.encoders import random_encoder

from ..conftest import HANDS8, tiny_model
from .test_bench import write_bench_store

TASKS = {
    "linear": {"epochs": 2}, "knn": {}, "occlusion": {"epochs": 2},
    "detection": {"epochs": 2, "max_train_frames": 60},
    "finetune": {"epochs": 1, "batch_size": 8},
    "semi": {"epochs": 1, "seeds": 1, "ratios": [0.5], "batch_size": 8},
    "fewshot": {"novel_classes": [1, 2], "ways": 2, "shots": [1], "episodes": 3, "queries": 1},
    "transfer": {"protocol": "linear", "linear": {"epochs": 2}},
    "ensemble": {"epochs": 2},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: faster on one thread


@pytest.fixture(scope="module")
def bench_store(tmp_path_factory):
    return write_bench_store(tmp_path_factory.mktemp("every_backbone") / "store")


def exported(backbone: str, stream: str, path):
    cfg = load_config(PretrainConfig, None, [*tiny_model(backbone), f"stream={stream}"])
    return save_encoder(random_encoder(cfg, HANDS8, 3, 2, seed=1).encoder, path)


@pytest.mark.parametrize("backbone", known_backbones())
def test_every_task_runs_on_the_backbone(backbone, bench_store, tmp_path):
    joint = exported(backbone, "joint", tmp_path / "joint.safetensors")
    motion = exported(backbone, "motion", tmp_path / "motion.safetensors")
    tasks = {**TASKS, "transfer": {**TASKS["transfer"], "target": str(bench_store)},
             "ensemble": {**TASKS["ensemble"], "encoders": [str(motion)]}}
    cfg = from_dict(BenchConfig, {"data": str(bench_store), "device": "cpu", "pretrain": None,
                                  "encoder": str(joint), "references": ["random-init"], "tasks": tasks,
                                  "pictures": False})
    rows = run_bench(cfg, tmp_path / "bench", log=lambda s: None)
    done = {(r["encoder"], r["task"]) for r in rows}
    assert done == {(e, t) for e in ("pretrained", "random-init") for t in TASKS}
    assert all(r["value"] == r["value"] for r in rows)  # no NaN


@pytest.mark.parametrize("backbone", ["bigru", "frame_mlp_test"])
def test_detection_sequence_mode_uses_the_causal_pass_or_chunks(backbone, bench_store, tmp_path):
    encoder = random_encoder(load_config(PretrainConfig, None, tiny_model(backbone)), HANDS8, 3, 2)
    ctx = TaskContext(encoder, bench_store, torch.device("cpu"), 0)
    sequence = {"features": "sequence", "epochs": 2}
    if encoder.encoder.causal:
        assert run_detection(ctx, from_dict(DetectionConfig, sequence)).metrics["frame_accuracy"] >= 0
        return
    with pytest.raises(ConfigError, match=r"needs a causal encoder .* set sequence_context=N"):
        run_detection(ctx, from_dict(DetectionConfig, sequence))
    chunked = from_dict(DetectionConfig, {**sequence, "sequence_context": 8, "sequence_stride": 2})
    assert run_detection(ctx, chunked).metrics["frame_accuracy"] >= 0
