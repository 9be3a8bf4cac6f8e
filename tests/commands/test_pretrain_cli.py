"""``pcm3 pretrain``: the resolved runtime (printed, recorded), bad device / precision before any
work, the run-folder lock."""

import json
import os

import pytest
import yaml

from pcm3.cli import main
from pcm3.engine.run_lock import LOCK_NAME, RunFolderLock

from ..conftest import TINY_MODEL
from ..engine.hardware_fakes import AVX2_ONLY, AVX512_BF16, use_probe
from ..engine.test_run_lock import dead_pid, write_stale_lock


def _pretrain(capsys, store, out, *overrides):
    code = main(["pretrain", "--out", str(out), f"data={store}", *TINY_MODEL, "max_steps=1", *overrides])
    stdout, stderr = capsys.readouterr()
    return code, stdout, stderr


def test_auto_is_resolved_printed_and_recorded_beside_the_config(tiny_store_path, tmp_path, capsys,
                                                                 monkeypatch):
    use_probe(monkeypatch, AVX512_BF16)
    run = tmp_path / "run"
    code, out, err = _pretrain(capsys, tiny_store_path, run)
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("[pretrain] device cpu (")
    assert "precision bf16 (auto: the CPU computes bf16 natively (avx512_bf16))" in first
    assert " threads (" in first
    assert yaml.safe_load((run / "config.yaml").read_text())["precision"] == "auto"  # what was asked
    info = json.loads((run / "run_info.json").read_text())  # what was chosen, and why
    assert info["requested"] == {"device": "auto", "precision": "auto"}
    assert (info["device"], info["precision"]) == ("cpu", "bf16")
    assert info["cpu"].startswith("AVX512-BF16 CPU") and info["threads"] >= 1 and info["world_size"] == 1
    assert not (run / LOCK_NAME).exists()  # released at the end


def test_forced_bf16_without_native_support_warns_once(tiny_store_path, tmp_path, capsys, monkeypatch):
    use_probe(monkeypatch, AVX2_ONLY)
    code, out, err = _pretrain(capsys, tiny_store_path, tmp_path / "run", "precision=bf16")
    assert code == 0, err
    warning = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1
    assert "precision=bf16: this CPU (AVX2-only CPU) has no AVX512-BF16 or AMX" in warning[0]
    assert "several times slower than fp32" in warning[0]
    assert "precision bf16 (requested; emulated on this cpu (slow))" in out


@pytest.mark.parametrize("override, message", [
    ("precision=fp16", "precision=fp16 needs a CUDA or MPS device"),
    ("precision=half", "'half' is not allowed; allowed values: ['auto', 'fp32', 'bf16', 'fp16']"),
    ("device=cuda", "device=cuda: CUDA is not available on this machine"),
    ("device=gpu", "device: 'gpu' is not allowed; allowed values: auto, cpu, cuda, cuda:N, mps"),
])
def test_bad_device_or_precision_fails_before_any_work(tiny_store_path, tmp_path, capsys, monkeypatch,
                                                       override, message):
    use_probe(monkeypatch, AVX512_BF16)
    code, _, err = _pretrain(capsys, tiny_store_path, tmp_path / "run", override)
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_second_process_is_refused_with_the_pid(tiny_store_path, tmp_path, capsys):
    run = tmp_path / "run"
    with RunFolderLock(run):  # another run holds the folder (flock: a second open conflicts, as a process)
        code, _, err = _pretrain(capsys, tiny_store_path, run)
    assert code == 2 and f"{run} is in use by process {os.getpid()}" in err
    assert not (run / "metrics.jsonl").exists() and not (run / "config.yaml").exists()


def test_a_lock_left_by_a_dead_run_is_taken_over(tiny_store_path, tmp_path, capsys):
    run = tmp_path / "run"
    pid = dead_pid()
    write_stale_lock(run, pid)
    code, _, err = _pretrain(capsys, tiny_store_path, run)
    assert code == 0, err
    assert f"process {pid} that held it is no longer running" in err
    assert (run / "checkpoints" / "last.pt").exists()
