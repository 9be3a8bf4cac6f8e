from dataclasses import dataclass

import pytest
import torch

from pcm3.data import open_store
from pcm3.errors import Pcm3Error
from pcm3.layouts import NTU25
from pcm3.tasks.base import TASKS, RawCoordinates, check_compatible, get_task, raw_encoder, register_task

from ..conftest import HANDS8


def test_raw_coordinates_flatten_in_the_documented_order():
    raw = RawCoordinates(3, 4, 8, 2)
    x = torch.arange(2 * 3 * 4 * 8 * 2, dtype=torch.float32).reshape(2, 3, 4, 8, 2)
    assert raw.forward_features(x).shape == (2, raw.feature_dim) == (2, 192)
    dense = raw.forward_dense(x)
    assert dense.shape == (2, 4, raw.frame_dim)
    n, t, v, c, m = 1, 2, 5, 1, 0  # dense[n, t] is frame t flattened as (V, C, M), like the GRU input
    assert dense[n, t, v * 6 + c * 2 + m] == x[n, c, t, v, m]


def test_registry_and_unknown_task():
    @dataclass
    class Cfg:
        k: int = 1

    @register_task("_probe", Cfg, "a test task")
    def run(ctx, cfg):
        return {"k": cfg.k}

    try:
        assert get_task("_probe").run(None, Cfg(3)) == {"k": 3}
        with pytest.raises(Pcm3Error, match="unknown task 'nope'"):
            get_task("nope")
    finally:
        TASKS.pop("_probe")


def test_layout_mismatch_is_refused(tiny_store_path):
    store = open_store(tiny_store_path)
    check_compatible(raw_encoder(HANDS8, 3, 2, 16), store)
    with pytest.raises(Pcm3Error, match="expects layout 'ntu25'"):
        check_compatible(raw_encoder(NTU25, 3, 2, 16), store)


def test_channel_and_person_mismatch_is_refused(tiny_store_path):
    from pcm3.config import load_config
    from pcm3.engine.config import PretrainConfig
    from pcm3.tasks.encoders import random_encoder

    from ..conftest import TINY_MODEL

    store = open_store(tiny_store_path)  # 3 channels, 2 persons
    cfg = load_config(PretrainConfig, None, TINY_MODEL)
    check_compatible(random_encoder(cfg, HANDS8, 3, 2), store)
    both = (r"the encoder random-init expects layout 'hands8' \(8 joints\), C={}, M={}; the store .* has "
            r"layout 'hands8' \(8 joints\), C=3, M=2")
    with pytest.raises(Pcm3Error, match=both.format(2, 2)):
        check_compatible(random_encoder(cfg, HANDS8, 2, 2), store)
    with pytest.raises(Pcm3Error, match=both.format(3, 1)):
        check_compatible(random_encoder(cfg, HANDS8, 3, 1), store)
    with pytest.raises(Pcm3Error, match=r"raw encoder expects 16 values per frame; .* 3 channels x 8 joints"):
        check_compatible(raw_encoder(HANDS8, 1, 2, 16), store)
