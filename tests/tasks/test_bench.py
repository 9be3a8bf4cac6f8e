"""``run_bench`` with tiny fake tasks: reference rows, row keys, cached results, agreeing
result files, pictures; plus one run of the real knn and linear tasks."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pcm3.config import from_dict, load_config
from pcm3.data import Sequence, write_store
from pcm3.data.store import open_store, open_untrimmed
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.tasks import bench
from pcm3.tasks.base import TASKS, get_task, register_task
from pcm3.tasks.bench import BenchConfig, data_fingerprint, run_bench, task_configs
from pcm3.tasks.bench_pretraining import _dotted, fewshot_holdout, pretrain_config
from pcm3.tasks.bench_table import ROW_KEYS, data_notes, markdown_table, read_csv_rows
from pcm3.tasks.encoders import load_encoder
from pcm3.tasks.fewshot import FewshotConfig

from ..conftest import TINY_MODEL, make_tiny_converted

REPO = Path(__file__).resolve().parents[2]
CALLS: list[tuple[str, str]] = []  # (task, encoder source) of every fake task run
ENCODERS = ["pcm3", "random-init", "raw"]


@dataclass
class ScoreConfig:
    offset: float = 0.0
    train_split: str | None = None
    test_split: str | None = None


def score_task(ctx, cfg):
    CALLS.append(("_score", ctx.encoder.source))
    base = {"raw": 10.0, "random-init": 20.0}.get(ctx.encoder.source, 50.0)
    return {"top1": base + cfg.offset, "top1_std": 0.25}


@dataclass
class DetectConfig:
    train_split: str | None = None
    test_split: str | None = None


def detect_task(ctx, cfg):
    CALLS.append(("_detect", ctx.encoder.source))
    test = open_untrimmed(ctx.store_path).split("xsub/val")  # the bench passes the untrimmed store
    rows = [{"sequence": 0, "split": "xsub/val", "label": 0, "start": 4, "end": 22, "score": 0.8},
            {"sequence": 0, "split": "xsub/val", "label": 1, "start": 30, "end": 40, "score": 0.3}]
    (ctx.out_dir / "detection_predictions.json").write_text(json.dumps(rows))
    return {"map@0.5": 5.0 * len(test)}


def tiny_pretrain_overrides(**extra) -> dict:
    """The tiny model, one epoch (2 steps of 8 clips): a checkpoint in a few seconds."""
    out = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in TINY_MODEL)}
    return {**out, "epochs": 1, "split": "xsub/train", "eval_split": "xsub/val", **extra}


def write_bench_store(path: Path) -> Path:
    """The tiny trimmed store of ``conftest`` plus two untrimmed recordings (train / val)."""
    converted = make_tiny_converted()
    rng = np.random.default_rng(1)
    converted.sequences = [
        Sequence(f"rec{i}", rng.normal(scale=0.1, size=(3, 60, 8, 2)).astype(np.float32),
                 np.array([[0, 5, 20], [2, 30, 50]], dtype=np.int64))
        for i in range(2)
    ]
    converted.sequence_splits = {"xsub/train": ["rec0"], "xsub/val": ["rec1"]}
    write_store(path, converted)
    return path


def bench_config(store: Path, **fields) -> BenchConfig:
    data = {"data": str(store), "device": "cpu", "tasks": {"_score": {}, "_detect": {}},
            "pretrain": {"config": None, "overrides": tiny_pretrain_overrides()}, **fields}
    return from_dict(BenchConfig, data)


@pytest.fixture(scope="module")
def fake_tasks():
    register_task("_score", ScoreConfig, "fake score")(score_task)
    register_task("_detect", DetectConfig, "fake detection")(detect_task)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(bench, "UNTRIMMED_TASKS", frozenset({"_detect"}))
            yield CALLS
    finally:
        TASKS.pop("_score")
        TASKS.pop("_detect")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, fake_tasks):
    """One bench: pre-training (tiny), the fake tasks on pcm3 / random-init / raw, pictures."""
    root = tmp_path_factory.mktemp("bench")
    store = write_bench_store(root / "store")
    out = root / "out"
    log: list[str] = []
    rows = run_bench(bench_config(store), out, log=log.append)
    return {"store": store, "out": out, "rows": rows, "log": log,
            "checkpoint": out / "pretrain" / "checkpoints" / "last.pt"}


def _by_key(rows):
    return {(r["encoder"], r["task"], r["metric"]): r for r in rows}


def test_rows_have_every_key_and_the_reference_encoders(bench_run):
    rows = bench_run["rows"]
    assert all(tuple(r) == ROW_KEYS for r in rows)
    keys = _by_key(rows)
    assert len(rows) == len(keys) == 3 * 3  # 3 encoders x (top1, top1_std, map@0.5)
    assert [keys[e, "_score", "top1"]["value"] for e in ENCODERS] == [50.0, 20.0, 10.0]
    assert [keys[e, "_detect", "map@0.5"]["value"] for e in ENCODERS] == [5.0, 5.0, 5.0]
    assert {r["split"] for r in rows} == {"xsub/val"} and {r["seed"] for r in rows} == {0}
    assert all(r["seconds"] >= 0 for r in rows)
    assert list(dict.fromkeys(r["encoder"] for r in rows)) == ENCODERS  # pre-trained first
    assert sum(line.startswith("[bench] _score") for line in bench_run["log"]) == 3


def test_result_files_agree(bench_run):
    out, rows = bench_run["out"], bench_run["rows"]
    assert json.loads((out / "results.json").read_text()) == rows
    assert read_csv_rows(out / "results.csv") == rows
    lines = (out / "results.md").read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["task", "metric", *ENCODERS, "seconds (pcm3 / random-init / raw)"]
    keys = _by_key(rows)
    task = None
    table = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:] if line.startswith("|")]
    assert len(table) == 3  # task/metric rows
    for cells in table:
        task = cells[0] or task
        for encoder, cell in zip(ENCODERS, cells[2:5], strict=True):
            assert cell == f"{keys[encoder, task, cells[1]]['value']:.1f}"
        if cells[0]:
            assert cells[5] == " / ".join(f"{keys[e, task, cells[1]]['seconds']:.1f}" for e in ENCODERS)


def test_provenance_and_pictures(bench_run):
    out = bench_run["out"]
    prov = json.loads((out / "provenance.json").read_text())
    store_meta = json.loads((bench_run["store"] / "meta.json").read_text())
    assert prov["data"]["fingerprint"] == store_meta["fingerprint"]
    assert prov["untrimmed"]["fingerprint"] == open_untrimmed(bench_run["store"]).fingerprint
    assert prov["tasks"]["_score"] == {"offset": 0.0, "train_split": None, "test_split": None}
    assert set(prov["encoders"]) == set(ENCODERS) and prov["code_version"] and prov["cached"] == []
    assert prov["pretrain"]["config"]["model"]["bigru"]["hidden_size"] == 16
    record = json.loads((out / "tasks" / "pcm3" / "_score.json").read_text())
    assert record["metrics"] == {"top1": 50.0, "top1_std": 0.25} and record["encoder"] == "pcm3"
    assert record["data_fingerprint"] == store_meta["fingerprint"]
    for name in ("tsne", "confusion_linear", "detection_timeline", "training_curves"):
        picture = out / "pictures" / f"{name}.png"
        assert picture.exists() and picture.stat().st_size > 1000, name
    assert not (out / "tasks" / "pcm3" / "_score").exists()  # no empty task folders left behind


def test_cached_results_are_reused(bench_run, fake_tasks, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(bench_run["out"], out)
    before = len(fake_tasks)
    log: list[str] = []
    rows = run_bench(bench_config(bench_run["store"], pictures=False), out, log=log.append)
    assert len(fake_tasks) == before  # nothing recomputed, pre-training not resumed either
    assert rows == bench_run["rows"]
    assert sorted(json.loads((out / "provenance.json").read_text())["cached"]) == sorted(
        f"{e}/{t}" for e in ENCODERS for t in ("_score", "_detect"))
    assert any("reusing" in line for line in log)
    # the same weights loaded from the checkpoint instead of pre-training: still cached
    cfg = bench_config(bench_run["store"], pretrain=None, encoder=str(bench_run["checkpoint"]),
                       pictures=False)
    assert run_bench(cfg, out, log=log.append) == rows and len(fake_tasks) == before
    # a changed task config recomputes that task only, for every encoder
    cfg = bench_config(bench_run["store"], tasks={"_score": {"offset": 1.0}, "_detect": {}}, pictures=False)
    rows = run_bench(cfg, out, log=log.append)
    sources = (str(out / "pretrain" / "checkpoints" / "last.pt"), "random-init", "raw")
    assert fake_tasks[before:] == [("_score", s) for s in sources]
    assert _by_key(rows)["pcm3", "_score", "top1"]["value"] == 51.0
    # another seed recomputes everything
    before = len(fake_tasks)
    rows = run_bench(replace(cfg, seed=3), out, log=log.append)
    assert len(fake_tasks) == before + 6 and {r["seed"] for r in rows} == {3}


def test_markdown_table_hand_written():
    keys = ("encoder", "task", "metric", "value", "seconds")
    rows = [dict(zip(keys, values, strict=True), split="s", seed=0) for values in [
        ("pcm3", "knn", "top1", 61.25, 2.0),
        ("pcm3", "knn", "top5", 90.0, 2.0),
        ("raw", "knn", "top1", 30.04, 0.5),
        ("pcm3", "detection", "map@0.5", 12.0, 31.0),
    ]]
    assert markdown_table(rows) == (
        "| task      | metric  | pcm3 |  raw | seconds (pcm3 / raw) |\n"
        "|-----------|---------|-----:|-----:|---------------------:|\n"
        "| knn       | top1    | 61.2 | 30.0 |            2.0 / 0.5 |\n"
        "|           | top5    | 90.0 |    - |                      |\n"
        "| detection | map@0.5 | 12.0 |    - |             31.0 / - |\n"
    )


def test_overlap_marks_and_held_out_classes_in_the_table():
    keys = ("encoder", "task", "metric", "value", "seconds", "pretraining_overlap", "held_out_classes")
    rows = [dict(zip(keys, values, strict=True), split="s", seed=0) for values in [
        ("pcm3", "knn", "top1", 61.25, 2.0, "3 samples (allowed)", "jump; wave"),
        ("raw", "knn", "top1", 30.04, 0.5, "n/a: not pre-trained", ""),
        ("official", "knn", "top1", 70.0, 0.5, "unchecked: no record", ""),
    ]]
    assert markdown_table(rows).splitlines()[2].startswith("| knn  | top1   | 61.2! | 30.0 |     70.0 |")
    assert data_notes(rows) == (
        "! = the evaluated samples overlap the encoder's pre-training samples (allow_overlap): "
        "pcm3/knn (3 samples (allowed)); the pcm3 encoder of knn was pre-trained without classes "
        "[jump; wave]; "
        "not checked for overlap with pre-training data (no record): official")
    assert data_notes(rows[1:2]) == ""


def test_an_overlapping_test_split_is_refused_before_anything_runs_or_labelled(bench_run, tmp_path):
    tasks = {"_score": {"train_split": "xsub/val", "test_split": "xsub/train"}}  # pre-training's split
    cfg = bench_config(bench_run["store"], pretrain=None, encoder=str(bench_run["checkpoint"]), tasks=tasks)
    CALLS.clear()
    with pytest.raises(Pcm3Error, match=r"_score with encoder .*last.pt: split 'xsub/train' of .* shares 16 "
                                        r"samples .*\(e.g. 'clip000', 'clip001'"):
        run_bench(cfg, tmp_path / "out", log=lambda s: None)
    assert CALLS == []
    cfg.allow_overlap = True
    rows = run_bench(replace(cfg, pictures=False), tmp_path / "out", log=lambda s: None)
    assert {(r["encoder"], r["pretraining_overlap"]) for r in rows} == {
        ("pcm3", "16 samples (allowed)"), ("random-init", "n/a: not pre-trained"),
        ("raw", "n/a: not pre-trained")}
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == rows
    table = (tmp_path / "out" / "results.md").read_text()
    assert "50.0!" in table and "pcm3/_score (16 samples (allowed))" in table


def test_fewshot_gets_a_separate_pretraining_or_labelled_rows(bench_run, tmp_path):
    fewshot = {"novel_classes": ["medium", "fast"], "ways": 2, "shots": [1], "episodes": 2, "queries": 1}
    pretrain = {"config": None, "overrides": tiny_pretrain_overrides(max_steps=1, batch_size=4)}
    held = {}
    for mode in ("separate", "shared"):
        cfg = bench_config(bench_run["store"], tasks={"_score": {}, "fewshot": fewshot}, references=["raw"],
                           pictures=False, pretrain=pretrain, fewshot_pretraining=mode)
        rows = run_bench(cfg, tmp_path / mode, log=lambda s: None)
        held[mode] = {(r["encoder"], r["task"]): r["held_out_classes"] for r in rows}
        assert {r["pretraining_overlap"] for r in rows if r["encoder"] == "pcm3"} == {"none"}
        assert "pcm3 encoder of fewshot" in (tmp_path / mode / "results.md").read_text()
    assert held["separate"] == {("pcm3", "_score"): "", ("pcm3", "fewshot"): "medium; fast",
                                ("raw", "_score"): "", ("raw", "fewshot"): ""}
    assert held["shared"] == {**held["separate"], ("pcm3", "_score"): "medium; fast"}
    main = load_encoder(tmp_path / "separate" / "pretrain" / "checkpoints" / "last.pt").pretraining
    few = load_encoder(tmp_path / "separate" / "pretrain_fewshot" / "checkpoints" / "last.pt").pretraining
    assert len(main["parts"][0]["ids"]) == 16 and few["parts"][0]["ids"] == ["clip000", "clip003", "clip006",
                                                                              "clip009", "clip012", "clip015"]
    assert not (tmp_path / "shared" / "pretrain_fewshot").exists()


def test_no_holdout_when_fewshot_reads_another_store(bench_run, tiny_store_path):
    pcfg = pretrain_config(bench_config(bench_run["store"]))
    fewshot = from_dict(FewshotConfig, {"novel_classes": ["fast"]})
    assert fewshot_holdout(pcfg, fewshot) == [2] and fewshot_holdout(pcfg, None) == []
    assert fewshot_holdout(pcfg, replace(fewshot, data=str(bench_run["store"]))) == [2]
    assert fewshot_holdout(pcfg, replace(fewshot, data=str(tiny_store_path))) == []  # NTU-60 -> NTU-120
    pcfg.exclude_classes = ["slow"]  # the pre-training config's own hold-out wins
    assert fewshot_holdout(pcfg, fewshot) == []


def test_the_cache_key_has_the_fingerprint_of_a_task_store(bench_run, tiny_store_path):
    store, other = open_store(bench_run["store"]), open_store(tiny_store_path)
    assert data_fingerprint("_score", ScoreConfig(), store) == store.fingerprint
    fewshot = from_dict(FewshotConfig, {"data": str(tiny_store_path)})
    assert data_fingerprint("fewshot", fewshot, store) == f"{store.fingerprint}+{other.fingerprint}"
    transfer = from_dict(get_task("transfer").config, {"target": str(tiny_store_path)})
    assert data_fingerprint("transfer", transfer, store) == f"{store.fingerprint}+{other.fingerprint}"
    assert data_fingerprint("fewshot", FewshotConfig(), store) == store.fingerprint


def test_unknown_novel_classes_fail_before_pretraining(bench_run, tmp_path):
    cfg = bench_config(bench_run["store"], tasks={"fewshot": {"novel_classes": ["fast", "jump", 7]}})
    with pytest.raises(ConfigError, match=r"novel classes \['jump', 7\] are not classes of store .*store"):
        run_bench(cfg, tmp_path / "out", log=lambda s: None)
    assert not (tmp_path / "out" / "pretrain").exists()


def test_bad_task_key_fails_before_anything_runs(bench_run, fake_tasks, tmp_path):
    cfg = bench_config(bench_run["store"], tasks={"_score": {"nope": 1}})
    with pytest.raises(ConfigError, match=r"tasks\._score.*'nope'.*offset"):
        run_bench(cfg, tmp_path / "out", log=lambda s: None)
    with pytest.raises(Pcm3Error, match="unknown task 'nothing'"):
        run_bench(bench_config(bench_run["store"], tasks={"nothing": {}}), tmp_path / "out",
                  log=lambda s: None)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="set either pretrain"):
        bench_config(bench_run["store"], pretrain=None)
    with pytest.raises(ConfigError, match="references"):
        bench_config(bench_run["store"], references=["oracle"])


def test_detection_tasks_need_an_untrimmed_store(fake_tasks, tiny_store_path, tmp_path):
    cfg = bench_config(tiny_store_path, encoder="unused.pt")
    with pytest.raises(ConfigError, match=r"need untrimmed sequences.*set untrimmed"):
        run_bench(cfg, tmp_path / "out", log=lambda s: None)


def test_another_pretraining_config_in_the_same_folder_is_refused(bench_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(bench_run["out"] / "pretrain", out / "pretrain")
    cfg = bench_config(bench_run["store"])
    cfg.pretrain.overrides["model.bigru.hidden_size"] = 8
    with pytest.raises(Pcm3Error, match=r"another config \(differs in: model.bigru.hidden_size\)"):
        run_bench(cfg, out, log=lambda s: None)
    # a run folder written before model options moved into model.bigru: compared after migration
    written = yaml.safe_load((out / "pretrain" / "config.yaml").read_text())
    written["model"].update(written["model"].pop("bigru"))
    written["model"]["hidden_size"] = 8
    (out / "pretrain" / "config.yaml").write_text(yaml.safe_dump(written))
    with pytest.raises(Pcm3Error, match=r"another config \(differs in: model.bigru.hidden_size\)"):
        run_bench(bench_config(bench_run["store"]), out, log=lambda s: None)


def test_a_task_that_changes_the_encoder_is_refused(bench_run, tmp_path):
    @register_task("_mutate", ScoreConfig, "changes the encoder in place")
    def mutate(ctx, cfg):
        with torch.no_grad():
            next(ctx.encoder.encoder.parameters()).add_(1.0)
        return {"top1": 1.0}

    try:
        cfg = bench_config(bench_run["store"], pretrain=None, encoder=str(bench_run["checkpoint"]),
                           references=[], tasks={"_mutate": {}})
        with pytest.raises(Pcm3Error, match="changed the weights or buffers of the pcm3 encoder"):
            run_bench(cfg, tmp_path / "out", log=lambda s: None)
    finally:
        TASKS.pop("_mutate")


def test_pretrain_overrides_become_dotted_key_values():
    assert _dotted({"epochs": 2, "model": {"bigru": {"hidden_size": 16}}, "augment.crop_scale": [0.5, 1.0],
                    "optim": {"name": "adamw"}, "split": None}) == [
        "epochs=2", "model.bigru.hidden_size=16", "augment.crop_scale=[0.5, 1.0]", 'optim.name="adamw"',
        "split=null"]
    cfg = from_dict(BenchConfig, {"data": "somewhere", "pretrain": {"config": None, "overrides": {
        "epochs": 3, "model": {"bigru": {"hidden_size": 256}}}}})
    pcfg = pretrain_config(cfg)
    assert (pcfg.data, pcfg.epochs, pcfg.device) == ("somewhere", 3, "auto")
    assert pcfg.model.options.hidden_size == 256
    cfg.pretrain.overrides["data"] = "elsewhere"  # an explicit pre-training data set wins
    assert pretrain_config(cfg).data == "elsewhere"


def test_bench_quick_config_loads(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = load_config(BenchConfig, REPO / "configs" / "bench_quick.yaml")
    assert list(task_configs(cfg)) == ["linear", "knn", "occlusion", "detection", "semi", "fewshot"]
    assert cfg.references == ["random-init", "raw"] and cfg.encoder is None
    pcfg = pretrain_config(cfg)
    assert pcfg.method == "pcm3" and pcfg.data == "synthetic"


def test_real_knn_and_linear_tasks(bench_run, tmp_path):
    cfg = bench_config(bench_run["store"], pretrain=None, encoder=str(bench_run["checkpoint"]),
                       tasks={"knn": {}, "linear": {"epochs": 2}}, pictures=False)
    rows = run_bench(cfg, tmp_path / "out", log=lambda s: None)
    keys = _by_key(rows)
    for encoder in ENCODERS:
        for task, metric in (("knn", "top1"), ("linear", "top1"), ("linear", "top5")):
            row = keys[encoder, task, metric]
            assert 0.0 <= row["value"] <= 100.0 and row["split"] == "xsub/val"
    assert not (tmp_path / "out" / "pictures").exists()


def test_bench_config_checks_the_encoder_format_and_stream():
    cfg = from_dict(BenchConfig, {"encoder": "mamp.pth", "encoder_format": "official-mamp",
                                  "encoder_stream": "bone"})
    assert (cfg.encoder_format, cfg.encoder_stream) == ("official-mamp", "bone")
    with pytest.raises(ConfigError, match=r"encoder_format must be one of .*official-mamp.*got 'mamp'"):
        from_dict(BenchConfig, {"encoder": "mamp.pth", "encoder_format": "mamp"})
    with pytest.raises(ConfigError, match=r"encoder_stream must be one of"):
        from_dict(BenchConfig, {"encoder": "mamp.pth", "encoder_stream": "velocity"})
