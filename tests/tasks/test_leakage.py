"""The leakage guard: checkpoints and exports record their pre-training samples; evaluation
refuses test data that overlaps them (other splits of the same store, or another store holding
the same clip ids), unless allowed, and then labels the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pcm3.cli import main
from pcm3.config import from_dict
from pcm3.data import write_store
from pcm3.data.store import open_store
from pcm3.errors import Pcm3Error
from pcm3.tasks.base import get_task
from pcm3.tasks.encoders import load_encoder
from pcm3.tasks.leakage import check_leakage, evaluated_samples

from ..conftest import TINY_MODEL, make_tiny_converted


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> dict[str, Path]:
    """A store whose ``xview/val`` shares clip005 and clip010 with ``xsub/train``, a second store
    with other data under the same ids, and a checkpoint pre-trained on ``xsub/train``."""
    root = tmp_path_factory.mktemp("leakage")
    converted = make_tiny_converted()
    ids = [s.id for s in converted.samples]
    converted.splits.update({"xview/train": ids[:5] + ids[11:16], "xview/val": ids[5:11:5] + ids[16:]})
    store = write_store(root / "store", converted).path
    copy = write_store(root / "copy", make_tiny_converted(seed=7)).path
    run = root / "run"
    assert main(["pretrain", "--out", str(run), f"data={store}", *TINY_MODEL, "max_steps=1",
                 "split=xsub/train"]) == 0
    export = root / "enc.safetensors"
    assert main(["export", str(run / "checkpoints" / "last.pt"), "--out", str(export)]) == 0
    return {"store": store, "copy": copy, "checkpoint": run / "checkpoints" / "last.pt", "export": export}


def _linear(**fields):
    return from_dict(get_task("linear").config, fields)


def test_checkpoint_and_export_record_the_pretraining_samples(pretrained):
    train_ids = [f"clip{i:03d}" for i in range(16)]
    for path in (pretrained["checkpoint"], pretrained["export"]):
        record = load_encoder(path).pretraining
        assert record is not None and record["complete"]
        [part] = record["parts"]
        assert part["ids"] == train_ids and part["split"] == "xsub/train"
        assert part["fingerprint"] == open_store(pretrained["store"]).fingerprint


def test_disjoint_test_split_passes(pretrained):
    encoder = load_encoder(pretrained["checkpoint"])
    store = open_store(pretrained["store"])
    assert check_leakage(encoder, "linear", _linear(), store).label == "none"  # xsub/val


def test_another_split_sharing_clips_is_refused(pretrained):
    encoder = load_encoder(pretrained["checkpoint"])
    store = open_store(pretrained["store"])
    cfg = _linear(test_split="xview/val")
    with pytest.raises(Pcm3Error, match=r"linear with encoder .*last.pt: split 'xview/val' of .*store "
                                        r"shares 2 samples with the encoder's pre-training data .*store "
                                        r"\(split 'xsub/train', 16 samples\) \(e.g. 'clip005', 'clip010'\)"
                                        r".*allow_overlap"):
        check_leakage(encoder, "linear", cfg, store)
    allowed = check_leakage(encoder, "linear", cfg, store, allow_overlap=True)
    assert (allowed.label, allowed.shared) == ("2 samples (allowed)", 2)
    assert allowed.examples == ["clip005", "clip010"]


def test_another_store_with_the_same_ids_is_refused(pretrained):
    encoder = load_encoder(pretrained["export"])
    cfg = _linear(train_split="xsub/val", test_split="xsub/train")
    with pytest.raises(Pcm3Error, match=r"'xsub/train' of .*copy shares 16 samples"):
        check_leakage(encoder, "linear", cfg, open_store(pretrained["copy"]))


def test_fewshot_checks_the_novel_clips_of_both_splits_and_transfer_its_target(pretrained):
    store = open_store(pretrained["store"])
    fewshot = from_dict(get_task("fewshot").config, {"novel_classes": ["fast"]})
    [(support, support_ids), (_, query_ids)] = evaluated_samples("fewshot", fewshot, store)
    assert "'xsub/train'" in support and list(support_ids) == ["clip002", "clip005", "clip008", "clip011",
                                                                "clip014"]
    assert list(query_ids) == ["clip017", "clip020", "clip023"]
    with pytest.raises(Pcm3Error, match=r"novel-class clips of split 'xsub/train' .* shares 5 samples"):
        check_leakage(load_encoder(pretrained["checkpoint"]), "fewshot", fewshot, store)
    transfer = from_dict(get_task("transfer").config, {"target": str(pretrained["copy"])})
    [(what, ids)] = evaluated_samples("transfer", transfer, store)
    assert what.endswith("copy") and len(ids) == 8


def test_eval_cli_refuses_or_labels_an_overlap(pretrained, tmp_path, capsys):
    args = ["eval", "knn", "--encoder", str(pretrained["checkpoint"]), "--data", str(pretrained["store"]),
            "train_split=xview/train", "test_split=xview/val"]
    assert main(args) == 2
    assert "shares 2 samples" in capsys.readouterr().err
    assert main([*args, "--allow-overlap", "--out", str(tmp_path)]) == 0
    assert "pre-training samples: 2 samples (allowed)" in capsys.readouterr().out
    record = json.loads((tmp_path / "knn.json").read_text())
    assert record["pretraining_overlap"] == "2 samples (allowed)"
    assert record["overlap_examples"] == ["clip005", "clip010"]
