"""Shared fixtures: a tiny trimmed store on an 8-joint, 2-part custom layout, and the config
overrides that make every model tiny (so pre-training tests take seconds on a CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pcm3.data import Converted, Sample, write_store
from pcm3.layouts import layout_from_dict

HANDS8 = layout_from_dict(
    {
        "name": "hands8",
        "joints": [
            "l_shoulder",
            "l_elbow",
            "l_wrist",
            "l_hand",
            "r_shoulder",
            "r_elbow",
            "r_wrist",
            "r_hand",
        ],
        "parents": [0, 0, 1, 2, 0, 4, 5, 6],
        "parts": {"left_arm": [0, 1, 2, 3], "right_arm": [4, 5, 6, 7]},
    }
)

TINY_MODEL = [
    "model.hidden_size=16",
    "model.num_layers=2",
    "model.projector_hidden=32",
    "model.embed_dim=8",
    "model.neck_hidden=16",
    "model.decoder_hidden_size=16",
    "model.prompt_length=4",
    "moco.queue_size=32",
    "augment.view_frames=16",
    "augment.crop_min_frames=8",
    "augment.mask_segment_frames=4",
    "batch_size=8",
    "epochs=2",
    "log_every=1",
]


def make_tiny_converted(n: int = 24, seed: int = 0) -> Converted:
    """``n`` short 2-person clips of 3 'classes' (different arm frequencies) with train/val."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        label = i % 3
        t = int(rng.integers(12, 30))
        phase = np.linspace(0, (label + 1) * np.pi, t)
        x = rng.normal(scale=0.05, size=(3, t, 8, 2)).astype(np.float32)
        x[1, :, :, 0] += np.sin(phase)[:, None].astype(np.float32)
        samples.append(Sample(f"clip{i:03d}", x, label))
    ids = [s.id for s in samples]
    return Converted(
        layout=HANDS8,
        class_names=["slow", "medium", "fast"],
        samples=samples,
        splits={"xsub/train": ids[: 2 * n // 3], "xsub/val": ids[2 * n // 3 :]},
    )


@pytest.fixture
def spawnable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make test modules importable by name in processes started with ``spawn``.

    pytest imports tests with ``--import-mode=importlib`` (no sys.path change); spawned
    workers unpickle their target by module name (``tests.engine.test_ddp``), so the repo
    root must be on their path.
    """
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def tiny_store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stores") / "tiny"
    write_store(path, make_tiny_converted())
    return path
