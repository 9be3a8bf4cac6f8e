import json

import pytest
import torch

from pcm3.cli import main
from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.errors import ConfigError
from pcm3.methods import METHODS, build_method
from pcm3.methods.pcm3 import PCM3
from pcm3.methods.pcm3pp import PCM3PlusPlus, cut_clips, draw_clips

from ..conftest import HANDS8, TINY_MODEL

PCM3_TERMS = {"contrast", "mix", "masked", "reconstructed", "kl", "reconstruction"}


def _method(*overrides):
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, "method=pcm3pp", *overrides])
    torch.manual_seed(0)
    return build_method(cfg, HANDS8, 3, 2)


def _batch(n=8, t=24):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, t, HANDS8.num_joints, 2, generator=g), torch.randint(8, t + 1, (n,), generator=g)


def test_methods_table_has_both_and_pcm3pp_is_a_pcm3():
    assert METHODS["pcm3pp"].cls is PCM3PlusPlus and issubclass(PCM3PlusPlus, PCM3)


def test_draw_clips_lengths_and_starts_stay_inside_the_view():
    g = torch.Generator().manual_seed(0)
    start, length = draw_clips(4000, 64, 8, 16, g, torch.device("cpu"))
    assert length.min() == 8 and length.max() == 16
    assert set(length.tolist()) == set(range(8, 17))  # every length is drawn
    assert start.min() == 0 and (start + length).max() == 64


def test_cut_clips_matches_a_per_sample_reference():
    x = torch.randn(3, 2, 10, 4, 1)
    start, length = torch.tensor([0, 3, 6]), torch.tensor([4, 5, 4])
    out = cut_clips(x, start, length, 6)
    for i in range(3):
        s, n = int(start[i]), int(length[i])
        torch.testing.assert_close(out[i, :, :n], x[i, :, s:s + n])
        assert out[i, :, n:].abs().sum() == 0


def test_clip_terms_are_logged_and_weighted():
    method = _method()
    losses = method(*_batch(), torch.Generator().manual_seed(0))
    assert set(losses) == PCM3_TERMS | {"clip", "clip_kl", "loss"}
    weights = method.loss_weights()
    expected = sum(weights[k] * v for k, v in losses.items() if k != "loss")
    torch.testing.assert_close(losses["loss"], expected)
    assert all(torch.isfinite(v) for v in losses.values())


def test_clip_branch_off_is_pcm3():
    losses = _method("pcm3pp.clip.weight=0", "pcm3pp.clip.kl=0")(*_batch(), torch.Generator().manual_seed(0))
    assert set(losses) == PCM3_TERMS | {"loss"}


@pytest.mark.parametrize("path", ["crop", "mask"])
def test_both_clip_paths_give_the_same_causal_feature(path):
    method = _method(f"pcm3pp.clip.path={path}").eval()
    views = {"query": torch.randn(5, 3, 16, HANDS8.num_joints, 2)}
    clips, lengths = method.clip_views(views, torch.Generator().manual_seed(3))
    assert clips.shape[2] == (16 if path == "mask" else int(lengths.max()))
    feats = method.encoder.forward_features(clips, lengths)
    assert feats.shape == (5, method.feature_dim) and torch.isfinite(feats).all()
    # the same clip encoded alone, one sample at a time, gives the same (causal) feature
    for i in range(5):
        alone = clips[i:i + 1, :, : int(lengths[i])]
        torch.testing.assert_close(method.encoder.forward_features(alone)[0], feats[i], atol=1e-5, rtol=1e-4)


def test_clip_padding_stays_out_of_train_mode_batch_norm():
    """In train mode too, crop (padded to the longest clip) and mask (padded to the view's 16
    frames) give the same clip features: the zero frames after each clip enter no BatchNorm
    statistics. Before, the mask path normalised with statistics over mostly zero frames."""
    views = {"query": torch.randn(6, 3, 16, HANDS8.num_joints, 2)}
    feats = []
    for path in ("crop", "mask"):
        method = _method(f"pcm3pp.clip.path={path}").train()
        clips, lengths = method.clip_views(views, torch.Generator().manual_seed(3))
        feats.append(method.encoder.forward_features(clips, lengths))
    torch.testing.assert_close(feats[1], feats[0], atol=1e-5, rtol=1e-4)


def test_in_place_clips_keep_their_frames_and_zero_the_rest():
    method = _method("pcm3pp.clip.path=in_place")
    views = {"query": torch.randn(4, 3, 16, HANDS8.num_joints, 2)}
    clips, ends = method.clip_views(views, torch.Generator().manual_seed(3))
    start, length = draw_clips(4, 16, 8, 16, torch.Generator().manual_seed(3), torch.device("cpu"))
    assert clips.shape == views["query"].shape and torch.equal(ends, start + length)
    for i in range(4):
        s, e = int(start[i]), int(start[i] + length[i])
        torch.testing.assert_close(clips[i, :, s:e], views["query"][i, :, s:e])
        assert clips[i, :, :s].abs().sum() == 0 and clips[i, :, e:].abs().sum() == 0


def _count_key_passes(method) -> list[int]:
    calls = [0]
    original = method.key_encoder.forward_features

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    method.key_encoder.forward_features = counted
    return calls


@pytest.mark.parametrize(("source", "key_passes"), [("query", 2), ("key", 1)])
def test_key_source_cuts_the_key_view_and_reuses_its_embedding(source, key_passes):
    method = _method(f"pcm3pp.clip.source={source}", "pcm3pp.clip.path=in_place")
    calls = _count_key_passes(method)
    losses = method(*_batch(), torch.Generator().manual_seed(0))
    assert calls[0] == key_passes and torch.isfinite(losses["clip"])
    views = {"query": torch.zeros(3, 3, 16, HANDS8.num_joints, 2),
             "key": torch.ones(3, 3, 16, HANDS8.num_joints, 2)}
    clips, _ = method.clip_views(views, torch.Generator().manual_seed(0))
    assert (clips.abs().sum() > 0) == (source == "key")


def test_key_source_anchor_is_the_sequence_pairs_key():
    """With source=key the clip pair's positive is the very tensor k of the sequence pair."""
    method = _method("pcm3pp.clip.source=key", "pcm3pp.clip.path=in_place")
    seen = {}
    original = method._contrastive_losses

    def spy(pairs, queue):
        seen.update({name: teacher for name, (_, teacher) in pairs.items()})
        return original(pairs, queue)

    method._contrastive_losses = spy
    method(*_batch(), torch.Generator().manual_seed(0))
    assert seen["clip"] is seen["contrast"]


def test_own_clip_queue_receives_the_anchors():
    method = _method("pcm3pp.clip.own_queue=true")
    before = method.clip_queue.keys.clone()
    method(*_batch(), torch.Generator().manual_seed(0))
    assert method.clip_queue.ptr.item() == 8 and not torch.equal(before[:8], method.clip_queue.keys[:8])


def test_post_distillation_trains_only_on_the_kl_terms():
    method = _method("stage=post_distill", "init=unused.pt")
    losses = method(*_batch(), torch.Generator().manual_seed(0))
    w = method.loss_weights()
    assert {k for k, v in w.items() if v} == {"kl", "clip_kl"} and w["kl"] == w["clip_kl"] == 1.0
    assert {"contrast", "mix", "masked", "reconstructed", "clip", "reconstruction"} < set(losses)  # logged
    torch.testing.assert_close(losses["loss"], losses["kl"] + losses["clip_kl"])


def test_post_distillation_keeps_the_terms_the_config_turns_back_on():
    method = _method("stage=post_distill", "init=unused.pt", "post_distill_terms=[kl, reconstruction]")
    losses = method(*_batch(), torch.Generator().manual_seed(0))
    assert {k for k, v in method.loss_weights().items() if v} == {"kl", "reconstruction"}
    torch.testing.assert_close(losses["loss"], losses["kl"] + 40.0 * losses["reconstruction"])


@pytest.mark.parametrize("overrides, message", [
    (["stage=post_distill"], r"needs init=CHECKPOINT"),
    (["method=pcm3", "stage=post_distill", "init=a.pt"],
     r"stage=post_distill is PCM3\+\+'s refinement \(method=pcm3pp\); method=pcm3 has no post-distillation"),
    (["stage=post_distill", "init=a.pt", "stream=motion"],
     r"stream=motion has no KL term .* it would train on nothing"),
    (["stage=post_distill", "init=a.pt", "stream=bone", "post_distill_terms=[kl, reconstruction]"],
     r"stream=bone has no KL term .* it would train on only reconstruction"),
    (["stage=post_distill", "init=a.pt", "pcm3pp.loss.kl=0"], r"pcm3pp.loss.kl is 0"),
    (["stage=post_distill", "init=a.pt", "post_distill_terms=[contrast]"], r"keeps neither kl nor clip_kl"),
    (["stage=post_distill", "init=a.pt", "post_distill_terms=[kl, infonce]"],
     r"unknown loss terms \['infonce'\]; terms: contrast, mix"),
])
def test_post_distill_refuses_what_would_not_be_eq_10(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(PretrainConfig, None, ["method=pcm3pp", *overrides])


def test_post_distill_cli_starts_from_a_pcm3_checkpoint(tiny_store_path, tmp_path, capsys):
    first = tmp_path / "pcm3"
    assert main(["pretrain", "--out", str(first), f"data={tiny_store_path}", *TINY_MODEL, "max_steps=2"]) == 0
    ckpt = first / "checkpoints" / "last.pt"
    second = tmp_path / "post"
    code = main(["pretrain", "--out", str(second), f"data={tiny_store_path}", *TINY_MODEL, "max_steps=2",
                 "method=pcm3pp", "stage=post_distill", f"init={ckpt}", "pcm3pp.loss.reconstruction=0",
                 "optim.lr=0", "optim.weight_decay=0"])
    assert code == 0
    log = (second / "log.txt").read_text()
    assert f"initialised from {ckpt}" in log
    record = torch.load(second / "checkpoints" / "last.pt", weights_only=True)["pretraining_samples"]
    assert record == torch.load(ckpt, weights_only=True)["pretraining_samples"]  # the same samples, once
    rows = [json.loads(line) for line in (second / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert any("clip" in k for k in steps[0])
    assert steps[0]["loss"] == pytest.approx(steps[0]["kl"] + steps[0]["clip_kl"], rel=1e-5)
    # with lr 0 the refined encoder is exactly the PCM3 run's encoder
    start = torch.load(ckpt, weights_only=True)["model"]
    end = torch.load(second / "checkpoints" / "last.pt", weights_only=True)["model"]
    for k in (k for k in start if k.startswith("encoder.") and "running" not in k and "batches" not in k):
        torch.testing.assert_close(end[k], start[k])
