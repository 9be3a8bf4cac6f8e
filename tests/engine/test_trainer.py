import json
from pathlib import Path

import pytest
import torch
import yaml

from pcm3.cli import main
from pcm3.config import load_config
from pcm3.data import open_store
from pcm3.engine.config import PretrainConfig
from pcm3.engine.trainer import Trainer, TrainingDiverged
from pcm3.errors import Pcm3Error
from pcm3.methods import build_method

from ..conftest import TINY_MODEL


class Interrupt(Exception):
    pass


def _trainer(store_path, run_dir, *overrides, on_step=None):
    cfg = load_config(PretrainConfig, None, [*TINY_MODEL, f"data={store_path}", *overrides])
    store = open_store(store_path).split("xsub/train")
    torch.manual_seed(cfg.seed)
    method = build_method(cfg, store.layout, 3, 2)
    return Trainer(cfg, method, store, run_dir, torch.device("cpu"), on_step=on_step)


def test_cli_pretrain_writes_the_documented_run_folder(tiny_store_path, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["pretrain", "--out", str(run), f"data={tiny_store_path}", *TINY_MODEL, "max_steps=3"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 3 and 0.0 <= summary["knn_top1"] <= 1.0
    assert summary["steps_this_run"] == 3 and summary["seconds"] > 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["bigru"]["hidden_size"] == 16 and cfg["max_steps"] == 3
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for key in ("step", "epoch", "loss", "contrast", "kl", "reconstruction", "lr", "samples_per_s"):
        assert key in steps[0]
    assert any("knn_top1" in r for r in rows)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert {"model", "optimizer", "queue", "rng", "step"} <= set(state) and state["step"] == 3
    assert any(k.endswith("queue.keys") for k in state["queue"])
    assert (run / "tensorboard").is_dir()


def test_interrupted_run_resumes_to_the_same_weights(tiny_store_path, tmp_path):
    # 16 training clips, batch 8: 2 steps per epoch; 5 steps cross an epoch boundary
    full = _trainer(tiny_store_path, tmp_path / "full", "max_steps=5")
    full.fit()

    def crash(step, _losses):
        if step == 3:
            raise Interrupt

    broken = _trainer(tiny_store_path, tmp_path / "cut", "max_steps=5", "checkpoint_every=2", on_step=crash)
    with pytest.raises(Interrupt):
        broken.fit()
    resumed = _trainer(tiny_store_path, tmp_path / "cut", "max_steps=5", "checkpoint_every=2")
    assert resumed.resume() and resumed.step == 2
    assert resumed.fit()["steps_this_run"] == resumed.total_steps - 2  # this process only
    a, b = full.method.state_dict(), resumed.method.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_nan_loss_stops_with_step_and_term_and_keeps_last_checkpoint(tiny_store_path, tmp_path):
    trainer = _trainer(tiny_store_path, tmp_path / "run", "max_steps=4", "checkpoint_every=1")
    forward = trainer.method.forward

    def poisoned(x, lengths, generator):
        losses = forward(x, lengths, generator)
        if trainer.step == 2:
            losses["reconstruction"] = losses["reconstruction"] * float("nan")
            losses["loss"] = losses["loss"] + losses["reconstruction"]
        return losses

    trainer.method.forward = poisoned
    with pytest.raises(TrainingDiverged, match="step 2: loss term 'reconstruction' is nan") as caught:
        trainer.fit()
    assert f"the last good checkpoint is kept in {tmp_path / 'run' / 'checkpoints'}" in str(caught.value)
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert last["step"] == 2
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


def test_divergence_before_the_first_checkpoint_says_none_was_written(tiny_store_path, tmp_path):
    trainer = _trainer(tiny_store_path, tmp_path / "run", "max_steps=4")  # checkpoints at epoch ends
    forward = trainer.method.forward

    def poisoned(x, lengths, generator):
        losses = forward(x, lengths, generator)
        losses["loss"] = losses["loss"] * float("inf")
        return losses

    trainer.method.forward = poisoned
    with pytest.raises(TrainingDiverged, match="step 0: loss term 'loss' is inf") as caught:
        trainer.fit()
    assert "no checkpoint was written yet" in str(caught.value) and "kept in" not in str(caught.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_corrupt_checkpoint_is_a_clear_error_and_touches_nothing(tiny_store_path, tmp_path):
    run = tmp_path / "run"
    _trainer(tiny_store_path, run, "max_steps=2", "checkpoint_every=1").fit()
    last = run / "checkpoints" / "last.pt"
    last.unlink()
    last.write_bytes(b"not a checkpoint")
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    with pytest.raises(Pcm3Error, match=r"last\.pt: cannot read checkpoint.*step_0000001\.pt"):
        _trainer(tiny_store_path, run, "max_steps=4").resume()
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("layout", "other", r"layout 'other' \(8 joints\), C=3, M=2"),
    ("in_channels", 2, r"layout 'hands8' \(8 joints\), C=2, M=2"),
    ("num_persons", 1, r"layout 'hands8' \(8 joints\), C=3, M=1"),
])
def test_resume_and_init_refuse_another_layout_channels_or_persons(tiny_store_path, tmp_path, key, value,
                                                                   expected):
    run = tmp_path / "run"
    _trainer(tiny_store_path, run, "max_steps=1").fit()
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    if key == "layout":
        state["encoder_spec"]["layout"]["name"] = value
    else:
        state["encoder_spec"][key] = value
    torch.save(state, run / "checkpoints" / "last.pt")
    both = (rf"checkpoint .*last.pt expects {expected}; the store .*tiny has layout 'hands8' \(8 joints\), "
            r"C=3, M=2")
    with pytest.raises(Pcm3Error, match=both):
        _trainer(tiny_store_path, run, "max_steps=2").resume()
    fresh = _trainer(tiny_store_path, tmp_path / "fresh", "max_steps=2")
    with pytest.raises(Pcm3Error, match=both):
        fresh.initialize_from(run / "checkpoints" / "last.pt")


def test_resume_refuses_another_architecture(tiny_store_path, tmp_path):
    run = tmp_path / "run"
    _trainer(tiny_store_path, run, "max_steps=1").fit()
    with pytest.raises(Pcm3Error, match=r"checkpoint encoder is bigru .*'hidden_size': 16.*the config builds "
                                        r"bigru .*'hidden_size': 8"):
        _trainer(tiny_store_path, run, "max_steps=2", "model.bigru.hidden_size=8").resume()


def test_bad_config_key_exits_2_naming_the_key(tiny_store_path, tmp_path, capsys):
    code = main(["pretrain", "--out", str(tmp_path / "r"), f"data={tiny_store_path}", "model.hiden=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown config key model.'hiden'" in err and "hidden_size" in err


def test_export_writes_the_encoder_as_safetensors(tiny_store_path, tmp_path):
    from safetensors.torch import load_file

    run = tmp_path / "run"
    trainer = _trainer(tiny_store_path, run, "max_steps=1")
    trainer.fit()
    out = tmp_path / "encoder.safetensors"
    assert main(["export", str(run / "checkpoints" / "last.pt"), "--out", str(out)]) == 0
    tensors = load_file(out)
    encoder_state = trainer.method.encoder.state_dict()
    assert set(tensors) == {*encoder_state, "input_prompt"}
    for key, value in encoder_state.items():
        torch.testing.assert_close(tensors[key], value)


def test_batch_too_large_is_refused(tiny_store_path, tmp_path):
    with pytest.raises(Pcm3Error, match="cannot fill one batch of 64"):
        _trainer(tiny_store_path, Path(tmp_path), "batch_size=64")


def test_excluded_classes_never_reach_pretraining(tiny_store_path):
    from pcm3.engine.pretrain import without_classes

    store = open_store(tiny_store_path).split("xsub/train")
    kept = without_classes(store, [1])
    assert len(kept) == (store.labels != 1).sum() and 1 not in set(kept.labels.tolist())
    with pytest.raises(Pcm3Error, match="not a class"):
        without_classes(store, ["no such class"])
    with pytest.raises(Pcm3Error, match="leaves no training samples"):
        without_classes(store, [0, 1, 2])
