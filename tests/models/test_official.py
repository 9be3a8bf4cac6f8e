"""Loading official PCM3 / CMD state dicts (official names and shapes) into our modules."""

from __future__ import annotations

import pytest
import torch

from pcm3.errors import ConfigError
from pcm3.models import (
    BiGRUEncoder,
    Projector,
    load_official_encoder,
    load_official_projector,
    official_state_dict,
)

from .conftest import chain_layout

H, L = 6, 2
ATOL = 1e-5


def with_prefix(state, prefix):
    return {prefix + k: v for k, v in state.items()}


@pytest.mark.parametrize("prefix", ["", "module."])
def test_moco_checkpoint_loads_encoder_q(official_moco, flatten_official, joints_persons, prefix):
    v, m = joints_persons
    torch.manual_seed(0)
    moco = official_moco(3 * v * m, H, L).eval()
    state = with_prefix(moco.state_dict(), prefix)
    encoder = BiGRUEncoder(chain_layout(v), m, hidden_size=H, num_layers=L).eval()
    report = load_official_encoder({"state_dict": state, "epoch": 3}, encoder)

    assert report["loaded"]["layers.1.gru_b.weight_hh_l0"] == (
        prefix + "encoder_q.encoder.gru.weight_hh_l1_reverse")
    assert report["loaded"]["input_norm.running_var"] == prefix + "encoder_q.input_norm.running_var"
    assert set(report["loaded"]) == set(encoder.state_dict())
    assert set(report["ignored"]) == set(state) - set(report["loaded"].values())
    assert prefix + "encoder_k.encoder.gru.weight_ih_l0" in report["ignored"]
    assert prefix + "recons_decoder.decoder.weight_ih_l0" in report["ignored"]
    assert prefix + "encoder_q.fc.0.weight" in report["ignored"]

    x = torch.randn(3, 3, 5, v, m)
    with torch.no_grad():
        reference = moco.encoder_q.frames(flatten_official(x))
        torch.testing.assert_close(encoder.forward_dense(x), reference, atol=ATOL, rtol=0)
        torch.testing.assert_close(encoder(x), reference[:, -1], atol=ATOL, rtol=0)

    projector = Projector(2 * H, 2 * H, 5)
    proj_report = load_official_projector(state, projector)
    assert proj_report["loaded"]["fc2.bias"] == prefix + "encoder_q.fc.2.bias"
    feature = torch.randn(4, 2 * H)
    torch.testing.assert_close(projector(feature), moco.encoder_q.fc(feature))


def test_downstream_bigru_without_scope_prefix(official_bigru, flatten_official):
    torch.manual_seed(0)
    official = official_bigru(48, H, L).eval()
    official.fc = torch.nn.Linear(2 * H, 5)  # downstream: a plain classifier
    state = official.state_dict()
    del state["input_norm.num_batches_tracked"]  # optional: defaults to the encoder's value
    encoder = BiGRUEncoder(chain_layout(8), 2, hidden_size=H, num_layers=L).eval()
    report = load_official_encoder(state, encoder)
    assert report["ignored"] == ["fc.bias", "fc.weight"]
    assert "input_norm.num_batches_tracked" not in report["loaded"]
    x = torch.randn(2, 3, 4, 8, 2)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), official.frames(flatten_official(x))[:, -1],
                                   atol=ATOL, rtol=0)
    with pytest.raises(ConfigError, match=r"missing key 'fc.0.weight' \(needed for 'fc1.weight'"):
        load_official_projector(state, Projector(2 * H, 2 * H, 5))


def test_missing_key_is_named(official_moco):
    state = official_moco(48, H, L).state_dict()
    del state["encoder_q.encoder.gru.bias_hh_l1_reverse"]
    encoder = BiGRUEncoder(chain_layout(8), 2, hidden_size=H, num_layers=L)
    with pytest.raises(ConfigError, match=r"missing key 'encoder_q.encoder.gru.bias_hh_l1_reverse'"
                                          r" \(needed for 'layers.1.gru_b.bias_hh_l0', expected "
                                          r"shape \(18,\)\)"):
        load_official_encoder(state, encoder)
    state = official_moco(48, H, L).state_dict()
    del state["encoder_q.input_norm.running_mean"]
    with pytest.raises(ConfigError, match="no input BatchNorm"):
        load_official_encoder(state, encoder)


def test_shape_mismatch_is_named(official_moco):
    state = official_moco(48, H, L).state_dict()
    wrong_hidden = BiGRUEncoder(chain_layout(8), 2, hidden_size=H + 1, num_layers=L)
    with pytest.raises(ConfigError, match=r"key 'encoder_q.encoder.gru.weight_ih_l0' has shape "
                                          r"\(18, 48\), expected \(21, 48\)"):
        load_official_encoder(state, wrong_hidden)
    wrong_joints = BiGRUEncoder(chain_layout(9), 2, hidden_size=H, num_layers=L)
    with pytest.raises(ConfigError, match=r"has shape \(48,\), expected \(54,\)"):
        load_official_encoder(state, wrong_joints)
    with pytest.raises(ConfigError, match=r"GRU 'encoder_q\.encoder\.gru\.' has 2 layers, the encoder "
                                          r"has 3"):
        load_official_encoder(state, BiGRUEncoder(chain_layout(8), 2, hidden_size=H, num_layers=3))
    with pytest.raises(ConfigError, match=r"'encoder_q.fc.2.weight' has shape \(5, 12\), expected"
                                          r" \(4, 12\)"):
        load_official_projector(state, Projector(2 * H, 2 * H, 4))


def test_unrecognisable_state_dicts(official_moco):
    encoder = BiGRUEncoder(chain_layout(8), 2, hidden_size=H, num_layers=L)
    moco = official_moco(48, H, L)
    decoder_only = {f"recons_decoder.decoder.{k}": t
                    for k, t in moco.recons_decoder.decoder.state_dict().items()}
    with pytest.raises(ConfigError, match="no bidirectional GRU"):
        load_official_encoder(decoder_only, encoder)
    two = {**with_prefix(moco.encoder_k.state_dict(), "a."),
           **with_prefix(moco.encoder_k.state_dict(), "b.")}
    with pytest.raises(ConfigError, match=r"several candidates .*'a\.encoder\.gru\.', 'b\.encoder"):
        load_official_encoder(two, encoder)
    with pytest.raises(ConfigError, match="not tensors"):
        official_state_dict({"state_dict": {"x": 1}})
    with pytest.raises(ConfigError, match="load into a BiGRUEncoder"):
        load_official_encoder(moco.state_dict(), torch.nn.Linear(2, 2))
