import json

import pytest
import yaml

from pcm3.cli import main
from pcm3.config import load_config, to_dict
from pcm3.data import open_store
from pcm3.engine.config import PretrainConfig
from pcm3.layouts import NTU25
from pcm3.models.encoder_files import save_encoder
from pcm3.tasks.encoders import random_encoder

from ..conftest import TINY_MODEL


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """A pre-training YAML with the tiny architecture (for ``--encoder random``)."""
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(to_dict(load_config(PretrainConfig, None, TINY_MODEL))))
    return path


def test_knn_raw_json(tiny_store_path, capsys):
    code, out, err = _run(capsys, "eval", "knn", "--encoder", "raw", "--data", tiny_store_path, "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert set(metrics) == {"top1", "top5_precision"} and 0.0 <= metrics["top1"] <= 100.0
    # overrides may come before or after the options
    code, out, err = _run(capsys, "eval", "knn", "precision_at=2", "--encoder", "raw", "--data",
                          tiny_store_path, "--json", "k=3")
    assert code == 0, err
    assert set(json.loads(out)) == {"top1", "top2_precision"}


def test_linear_random_writes_the_result_record(tiny_store_path, tiny_config, tmp_path, capsys):
    out_dir = tmp_path / "results"
    code, out, err = _run(capsys, "eval", "linear", "--encoder", "random", "--config", tiny_config,
                          "--data", tiny_store_path, "--out", out_dir, "--seed", "3", "epochs=2", "lr=0.05")
    assert code == 0, err
    assert out.splitlines()[0].startswith("[eval] device cpu (") and "threads" in out.splitlines()[0]
    assert out.splitlines()[1].endswith("pre-training samples: n/a: not pre-trained")
    assert out.splitlines()[2].startswith("linear | encoder random-init")
    assert "top1" in out and "top5" in out and f"wrote {out_dir / 'linear.json'}" in out
    record = json.loads((out_dir / "linear.json").read_text())
    assert record["task"] == "linear" and record["seed"] == 3 and record["encoder"] == "random-init"
    assert record["config"]["epochs"] == 2 and record["config"]["lr"] == 0.05
    assert record["config"]["augment"] is False  # the protocol is recorded
    assert record["data_fingerprint"] == open_store(tiny_store_path).fingerprint
    assert set(record["metrics"]) == {"top1", "top5"} and record["seconds"] >= 0
    assert record["code_version"]
    assert record["runtime"]["device"] == "cpu" and record["runtime"]["requested"]["device"] == "auto"
    assert record["pretraining_overlap"] == "n/a: not pre-trained" and record["held_out_classes"] == []


def test_bad_override_is_one_line_naming_the_allowed_keys(tiny_store_path, capsys):
    code, _, err = _run(capsys, "eval", "knn", "--encoder", "raw", "--data", tiny_store_path, "kk=3")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown config key 'kk'" in err and "precision_at" in err and "Traceback" not in err
    code, _, err = _run(capsys, "eval", "knn", "--encoder", "raw", "--data", tiny_store_path, "k=zero")
    assert code == 2 and "k: expected an integer" in err


def test_layout_mismatch_is_refused_before_anything(tiny_store_path, tmp_path, capsys):
    cfg = load_config(PretrainConfig, None, TINY_MODEL)
    path = save_encoder(random_encoder(cfg, NTU25, 3, 2).encoder, tmp_path / "ntu.safetensors")
    code, out, err = _run(capsys, "eval", "linear", "--encoder", path, "--data", tiny_store_path,
                          "--out", tmp_path / "o")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "expects layout 'ntu25' (25 joints), C=3, M=2" in err
    assert "has layout 'hands8' (8 joints), C=3" in err
    assert out == "" and not (tmp_path / "o").exists()


def test_channel_mismatch_is_refused(tiny_store_path, tmp_path, capsys):
    from pcm3.layouts import layout_from_dict

    hands8 = layout_from_dict(json.loads((tiny_store_path / "meta.json").read_text())["layout"])
    cfg = load_config(PretrainConfig, None, TINY_MODEL)
    encoder = random_encoder(cfg, hands8, 2, 2)  # 2-D coordinates; the store has x, y, z
    path = save_encoder(encoder.encoder, tmp_path / "2d.safetensors")
    code, _, err = _run(capsys, "eval", "knn", "--encoder", path, "--data", tiny_store_path)
    assert code == 2 and "expects layout 'hands8' (8 joints), C=2, M=2" in err
    assert "has layout 'hands8' (8 joints), C=3, M=2" in err
    one_person = save_encoder(random_encoder(cfg, hands8, 3, 1).encoder, tmp_path / "m1.safetensors")
    code, _, err = _run(capsys, "eval", "knn", "--encoder", one_person, "--data", tiny_store_path)
    assert code == 2 and "C=3, M=1; the store" in err and "C=3, M=2" in err


def test_usage_errors(tiny_store_path, tiny_config, capsys):
    code, _, err = _run(capsys, "eval", "linear", "--encoder", "random", "--data", tiny_store_path)
    assert code == 2 and "--encoder random needs --config" in err
    code, _, err = _run(capsys, "eval", "nope", "--encoder", "raw", "--data", tiny_store_path)
    assert code == 2 and "unknown task 'nope'" in err
    code, _, err = _run(capsys, "eval", "knn", "--encoder", "raw", "--data", tiny_store_path,
                        "test_split=xsub/train")
    assert code == 2 and "never evaluates on its training split" in err
    code, _, err = _run(capsys, "eval", "knn", "--encoder", "raw", "--data", tiny_store_path, "stray")
    assert code == 2 and "unrecognized arguments: stray" in err
