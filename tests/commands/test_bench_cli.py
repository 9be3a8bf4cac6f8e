"""``pcm3 bench``: runs the bench, prints the table and where the files are; bad keys exit 2."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import yaml

from pcm3.cli import main
from pcm3.tasks.base import TASKS, register_task

from ..conftest import TINY_MODEL


@dataclass
class CliScoreConfig:
    bonus: float = 0.0
    train_split: str | None = None
    test_split: str | None = None


@pytest.fixture(scope="module")
def cli_task():
    @register_task("_cli_score", CliScoreConfig, "a fake task for the CLI test")
    def run(ctx, cfg):
        return {"top1": (12.34 if ctx.encoder.source == "raw" else 56.78) + cfg.bonus}

    try:
        yield
    finally:
        TASKS.pop("_cli_score")


def _write_config(path, store, **extra):
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in TINY_MODEL)}
    overrides.update(epochs=1, knn_every=0)
    config = {"data": str(store), "device": "cpu", "references": ["raw"], "pictures": False,
              "pretrain": {"config": None, "overrides": overrides}, "tasks": {"_cli_score": {}}, **extra}
    path.write_text(yaml.safe_dump(config))
    return path


def test_bench_command_prints_the_table(cli_task, tiny_store_path, tmp_path, capsys):
    config = _write_config(tmp_path / "bench.yaml", tiny_store_path)
    out = tmp_path / "run"
    code = main(["bench", "--config", str(config), "--out", str(out), "tasks._cli_score.bonus=1"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "| _cli_score | top1   | 57.8 | 13.3 |" in stdout
    assert str(out / "results.md") in stdout and str(out / "provenance.json") in stdout
    rows = json.loads((out / "results.json").read_text())
    assert [(r["encoder"], r["value"]) for r in rows] == [("pcm3", pytest.approx(57.78)),
                                                          ("raw", pytest.approx(13.34))]
    assert (out / "pretrain" / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("argv_extra, message", [
    (["nope=1"], "unknown config key 'nope'"),
    (["tasks._cli_score.nope=1"], "tasks._cli_score"),
    (["references=[oracle]"], "references[0]"),
    (["tasks={unknown_task: {}}"], "unknown task 'unknown_task'"),
])
def test_bad_config_exits_2_with_one_line(cli_task, tiny_store_path, tmp_path, capsys, argv_extra, message):
    config = _write_config(tmp_path / "bench.yaml", tiny_store_path)
    code = main(["bench", "--config", str(config), "--out", str(tmp_path / "run"), *argv_extra])
    _, stderr = capsys.readouterr()
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("error: ") and message in stderr
    assert not (tmp_path / "run").exists()  # nothing ran


def test_overrides_around_options_as_a_user_types_them(cli_task, tiny_store_path, tmp_path, capsys):
    config = _write_config(tmp_path / "bench.yaml", tmp_path / "no_such_store")
    out = tmp_path / "run"
    code = main(["bench", "--config", str(config), f"data={tiny_store_path}", "--out", str(out),
                 "tasks._cli_score.bonus=2"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "| _cli_score | top1   | 58.8 | 14.3 |" in stdout
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["config"]["data"] == str(tiny_store_path)
    assert provenance["runtime"]["device"] == "cpu" and provenance["runtime"]["threads"] >= 1
    assert provenance["pretrain"]["run_info"]["precision"] in ("fp32", "bf16")


def test_a_bench_folder_in_use_is_refused_with_the_pid(cli_task, tiny_store_path, tmp_path, capsys):
    import os

    from pcm3.engine.run_lock import RunFolderLock

    config = _write_config(tmp_path / "bench.yaml", tiny_store_path)
    out = tmp_path / "run"
    with RunFolderLock(out):
        code = main(["bench", "--config", str(config), "--out", str(out)])
    _, stderr = capsys.readouterr()
    assert code == 2 and f"{out} is in use by process {os.getpid()}" in stderr
    assert not (out / "pretrain").exists()
