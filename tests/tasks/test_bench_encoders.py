"""``pcm3 bench`` over an ``encoders:`` list: entry parsing and refusals, a tiny bench of two
pre-trainings (bigru, stgcn) with a fake task, its comparison table, reuse and resume per entry,
and failures kept to their entry or task."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pcm3.config import from_dict, load_config
from pcm3.errors import ConfigError
from pcm3.tasks import bench_encoders
from pcm3.tasks.base import TASKS, register_task
from pcm3.tasks.bench import BenchConfig, run_bench
from pcm3.tasks.bench_comparison import comparison_table
from pcm3.tasks.bench_encoders import config_key, resolve_entries
from pcm3.tasks.bench_table import ROW_KEYS

from ..conftest import TINY_MODEL, tiny_model

CALLS: list[str] = []  # encoder source of every fake task run


@dataclass
class EntryScoreConfig:
    fail_on: str = ""  # a source containing this raises
    train_split: str | None = None
    test_split: str | None = None


@pytest.fixture(scope="module")
def entry_task():
    @register_task("_entry_score", EntryScoreConfig, "fake score per encoder")
    def run(ctx, cfg):
        CALLS.append(ctx.encoder.source)
        if cfg.fail_on and cfg.fail_on in ctx.encoder.source:
            raise RuntimeError(f"boom on {ctx.encoder.source}")
        return {"top1": 10.0 if ctx.encoder.source == "raw" else 20.0 + ctx.encoder.feature_dim}

    try:
        yield CALLS
    finally:
        TASKS.pop("_entry_score")


def _overrides(options: list[str]) -> dict:
    out = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in options)}
    return {**out, "epochs": 1, "split": "xsub/train", "eval_split": "xsub/val", "knn_every": 0}


def bench_cfg(store: Path, entries: list[dict], **fields) -> BenchConfig:
    return from_dict(BenchConfig, {"data": str(store), "device": "cpu", "pretrain": None, "pictures": False,
                                   "tasks": {"_entry_score": {}}, "encoders": entries, **fields})


ENTRIES = [{"method": "pcm3", "overrides": _overrides(TINY_MODEL)},
           {"method": "pcm3", "backbone": "stgcn",
            "overrides": _overrides([o for o in tiny_model("stgcn") if o != "model.backbone=stgcn"])}]
NAMES = ["pcm3/bigru", "pcm3/stgcn", "random-init (bigru)", "random-init (stgcn)", "raw"]


@pytest.fixture(scope="module")
def two_entries(tmp_path_factory, tiny_store_path, entry_task):
    out = tmp_path_factory.mktemp("bench_entries") / "out"
    log: list[str] = []
    rows = run_bench(bench_cfg(tiny_store_path, ENTRIES), out, log=log.append)
    return {"out": out, "rows": rows, "log": log}


@pytest.mark.parametrize("entry, message", [
    ({"method": "pcm3", "nope": 1}, r"unknown config key encoders\[0\]\.'nope'"),
    ({"name": "x", "overrides": {"epochs": 1}}, "needs method .* or checkpoint"),
    ({"checkpoint": "a.pt", "method": "pcm3"}, "method belong to a pre-training entry"),
])
def test_bad_entries_are_refused(entry, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(BenchConfig, {"pretrain": None, "encoders": [entry]})


def test_encoders_replace_pretrain_and_encoder():
    with pytest.raises(ConfigError, match="leave pretrain and encoder out"):
        from_dict(BenchConfig, {"pretrain": {"config": "x.yaml"}, "encoders": [{"method": "pcm3"}]})
    with pytest.raises(ConfigError, match="leave pretrain and encoder out"):
        from_dict(BenchConfig, {"encoder": "a.pt", "encoders": [{"method": "pcm3"}]})
    cfg = from_dict(BenchConfig, {"encoders": [{"method": "pcm3"}]})  # the default pretrain is unused
    assert cfg.encoders[0].method == "pcm3"


def test_names_default_and_duplicates_are_refused(tmp_path):
    cfg = bench_cfg(tmp_path, [{"method": "pcm3"}, {"method": "skeletonclr"}, {"checkpoint": "runs/a/b.pt"}])
    assert [r.name for r in resolve_entries(cfg.encoders, "synthetic", "auto")] == [
        "pcm3/bigru", "skeletonclr/stgcn", "b"]  # each method's default backbone; the file stem
    for entries, message in [
        ([{"method": "pcm3"}, {"method": "pcm3", "backbone": "bigru"}], "two entries are named 'pcm3/bigru'"),
        ([{"name": "a/b", "method": "pcm3"}, {"name": "a_b", "checkpoint": "x.pt"}],
         "'a_b' as a folder name"),
        ([{"name": "raw", "method": "pcm3"}], "taken by a reference row"),
        ([{"method": "nothing"}], r"encoders\[0\].*unknown method 'nothing'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            resolve_entries(bench_cfg(tmp_path, entries).encoders, "synthetic", "auto")


def test_entry_config_switches_backbone_and_refuses_another_method(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    entry = {"method": "pcm3", "backbone": "transformer", "config": str(repo / "configs" / "pcm3_quick.yaml"),
             "overrides": {"epochs": 3}}
    (resolved,) = resolve_entries(bench_cfg(tmp_path, [entry]).encoders, "somewhere", "cpu")
    pcfg = resolved.pretrain
    assert (pcfg.model.backbone, pcfg.epochs, pcfg.data, pcfg.device, pcfg.batch_size) == (
        "transformer", 3, "somewhere", "cpu", 64)  # the file's bigru widths dropped, the rest kept
    with pytest.raises(ConfigError, match=r"pcm3_quick.yaml is a 'pcm3' config, but the entry's method is "
                                          r"'cmd'"):
        resolve_entries(bench_cfg(tmp_path, [{**entry, "method": "cmd"}]).encoders, "x", "cpu")


def test_two_entries_give_a_row_each_with_their_references(two_entries, tiny_store_path):
    rows, out = two_entries["rows"], two_entries["out"]
    assert all(tuple(r) == ROW_KEYS for r in rows) and not any(r["error"] for r in rows)
    assert [r["encoder"] for r in rows] == NAMES
    assert [r["value"] for r in rows][-1] == 10.0
    cfg = bench_cfg(tiny_store_path, ENTRIES)
    for resolved in resolve_entries(cfg.encoders, cfg.data, cfg.device):  # one folder per resolved config
        run_dir = out / "pretrain" / f"{resolved.slug}-{config_key(resolved.pretrain)}"
        assert (run_dir / "summary.json").exists() and (run_dir / "checkpoints" / "last.pt").exists()
    assert (out / "tasks" / "pcm3_bigru" / "_entry_score.json").exists()
    prov = json.loads((out / "provenance.json").read_text())
    assert set(prov["pretrain"]) == {"pcm3/bigru", "pcm3/stgcn"} and prov["failures"] == {}
    assert prov["pretrain"]["pcm3/stgcn"]["config"]["model"]["backbone"] == "stgcn"
    record = json.loads((out / "tasks" / "pcm3_stgcn" / "_entry_score.json").read_text())
    assert record["seed"] == 0 and record["code_version"] and record["data_fingerprint"]


def test_comparison_table_shape(two_entries):
    lines = (two_entries["out"] / "results.md").read_text().splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    assert cells[0] == ["encoder", "_entry_score", "seconds"]
    assert cells[2] == ["", "top1", ""]
    assert [c[0] for c in cells[3:]] == NAMES
    values = {r["encoder"]: r["value"] for r in two_entries["rows"]}
    assert [c[1] for c in cells[3:]] == [f"{values[n]:.1f}" for n in NAMES]


def test_comparison_table_hand_written():
    def row(encoder, task, metric, value, seconds=1.0, error=""):
        return {"encoder": encoder, "task": task, "metric": metric, "value": value, "seconds": seconds,
                "pretraining_overlap": "none", "error": error}

    rows = [row("a", "knn", "top1", 61.25), row("a", "linear", "top1", 70.0, 2.0),
            row("a", "linear", "top5", 90.0, 2.0),
            row("b", "pretrain", "error", None, 0.0, "ValueError: x|y"),
            row("raw", "knn", "top1", 30.0, 0.5), row("raw", "linear", "error", None, 0.0, "RuntimeError: z")]
    assert comparison_table(rows) == (  # seconds: per encoder, summed over tasks (not metrics)
        "| encoder |   knn | linear |       | seconds | error                     |\n"
        "|---------|------:|-------:|------:|--------:|---------------------------|\n"
        "|         |  top1 |   top1 |  top5 |         |                           |\n"
        "| a       |  61.2 |   70.0 |  90.0 |     3.0 |                           |\n"
        "| b       | error |  error | error |     0.0 | pretrain: ValueError: x/y |\n"
        "| raw     |  30.0 |  error | error |     0.5 | linear: RuntimeError: z   |\n")
    assert "error" not in comparison_table(rows[:3]).splitlines()[0]  # no error column without failures


def test_finished_entries_are_reused_and_an_unfinished_one_resumed(two_entries, tiny_store_path, entry_task,
                                                                    tmp_path):
    out = tmp_path / "out"
    shutil.copytree(two_entries["out"], out)
    cfg = bench_cfg(tiny_store_path, ENTRIES)
    stgcn = next(r for r in resolve_entries(cfg.encoders, cfg.data, cfg.device) if r.name == "pcm3/stgcn")
    (out / "pretrain" / f"{stgcn.slug}-{config_key(stgcn.pretrain)}" / "summary.json").unlink()  # "killed"
    before = len(entry_task)
    log: list[str] = []
    rows = run_bench(cfg, out, log=log.append)
    assert sum("is finished: reusing it" in line for line in log) == 1
    assert sum("(resumed if it exists)" in line and "pcm3_stgcn-" in line for line in log) == 1
    assert len(entry_task) == before  # the same weights: every task result reused
    assert rows == two_entries["rows"]
    # a changed entry config is a new folder; the other entry stays reused
    changed = [ENTRIES[0], {**ENTRIES[1], "overrides": {**ENTRIES[1]["overrides"], "seed": 1}}]
    log.clear()
    run_bench(bench_cfg(tiny_store_path, changed), out, log=log.append)
    assert sum("is finished: reusing it" in line for line in log) == 1
    assert len(list((out / "pretrain").glob("pcm3_stgcn-*"))) == 2


def test_one_failing_entry_or_task_keeps_the_others(two_entries, tiny_store_path, entry_task, tmp_path,
                                                    monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(two_entries["out"], out)
    real = bench_encoders._pretrain_entry

    def pretrain_or_fail(r, *args):
        if r.name == "pcm3/stgcn":
            raise RuntimeError("pre-training diverged")
        return real(r, *args)

    monkeypatch.setattr(bench_encoders, "_pretrain_entry", pretrain_or_fail)
    checkpoint = str(next((out / "pretrain").glob("pcm3_bigru-*")) / "checkpoints" / "last.pt")
    entries = [*ENTRIES, {"name": "loaded", "checkpoint": checkpoint}]
    cfg = bench_cfg(tiny_store_path, entries, tasks={"_entry_score": {"fail_on": "raw"}})
    rows = run_bench(cfg, out, log=lambda s: None)
    errors = {(r["encoder"], r["task"]): r["error"] for r in rows if r["error"]}
    assert errors == {("pcm3/stgcn", "pretrain"): "RuntimeError: pre-training diverged",
                      ("raw", "_entry_score"): "RuntimeError: boom on raw"}
    assert [r["encoder"] for r in rows] == ["pcm3/bigru", "pcm3/stgcn", "loaded", "random-init (bigru)",
                                            "raw"]
    values = {r["encoder"]: r["value"] for r in rows}
    assert values["loaded"] == values["pcm3/bigru"] and values["pcm3/stgcn"] is None
    assert json.loads((out / "results.json").read_text()) == rows
    table = (out / "results.md").read_text()
    assert "pretrain: RuntimeError: pre-training diverged" in table and "2 failed:" in table
    assert json.loads((out / "provenance.json").read_text())["failures"] == {
        f"{e}/{t}": m for (e, t), m in errors.items()}


def test_the_cli_exits_1_after_writing_the_others(two_entries, tiny_store_path, entry_task, tmp_path, capsys):
    from pcm3.cli import main

    out = tmp_path / "out"
    shutil.copytree(two_entries["out"], out)
    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump({"data": str(tiny_store_path), "device": "cpu", "pictures": False,
                                      "encoders": ENTRIES, "tasks": {"_entry_score": {"fail_on": "raw"}}}))
    code = main(["bench", "--config", str(config), "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 1 and "raw/_entry_score: RuntimeError: boom on raw" in stderr
    assert "| pcm3/stgcn " in stdout


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["bench_methods_quick", "bench_methods_nwucla"])
def test_shipped_method_benches_cover_every_method(name, monkeypatch):
    from pcm3.methods.registry import METHODS, load_builtin_methods
    from pcm3.models.registry import load_builtin_backbones

    load_builtin_methods()
    load_builtin_backbones()
    monkeypatch.chdir(REPO)
    cfg = load_config(BenchConfig, REPO / "configs" / f"{name}.yaml")
    resolved = resolve_entries(cfg.encoders, cfg.data, cfg.device)
    pairs = {(r.pretrain.method, r.pretrain.model.backbone) for r in resolved}
    builtin = [m for m in METHODS.values() if m.cls.__module__.startswith("pcm3.")]
    assert {(m.name, m.default_backbone) for m in builtin} <= pairs
    assert {("pcm3", b) for b in ("bigru", "stgcn", "transformer")} <= pairs
    assert {"linear", "knn"} <= set(cfg.tasks)
    from pcm3.layouts import NTU25
    from pcm3.methods import build_method

    for r in resolved:  # every entry builds (widths, prompt length and backbone fit together)
        assert sum(p.numel() for p in build_method(r.pretrain, NTU25, 3, 2).parameters()) > 0
