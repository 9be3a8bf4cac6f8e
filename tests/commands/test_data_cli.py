import json

import numpy as np
import pytest

from pcm3.cli import main

from ..real_data import real_data


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def nwucla_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "nwucla"
    assert (
        main(["data", "convert", str(real_data("nw_ucla")), "--format", "nw-ucla", "--out", str(out)]) == 0
    )
    return out


def test_convert_and_info_json_on_real_nwucla(nwucla_store, capsys):
    code, out, _ = _run(capsys, "data", "info", str(nwucla_store), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["num_samples"] == 1484 and info["num_classes"] == 10 and info["layout"] == "kinect_v1_20"
    assert info["splits"]["xview/train"] == 1020 and info["splits"]["xview/val"] == 464
    assert info["max_length"] == 201 and len(info["fingerprint"]) == 16
    assert info["preprocessing"]["steps"] == ["repair", "center", "align"]
    code, out, _ = _run(capsys, "data", "info", str(nwucla_store))
    assert code == 0 and "kinect_v1_20" in out and "xview/val: 464" in out


def test_convert_pku_writes_both_stores(tmp_path, capsys):
    out = tmp_path / "pku"
    code, stdout, _ = _run(
        capsys,
        "data",
        "convert",
        str(real_data("pku_mmd_part1")),
        "--format",
        "pku-mmd",
        "--out",
        str(out),
    )
    assert code == 0 and "13 untrimmed sequences (136 intervals)" in stdout
    code, stdout, _ = _run(capsys, "data", "info", str(out), "--json")
    info = json.loads(stdout)
    assert info["num_samples"] == 136 and info["num_sequences"] == 13 and info["num_intervals"] == 136
    code, stdout, _ = _run(capsys, "data", "info", str(out / "untrimmed"), "--json")
    info = json.loads(stdout)
    assert info["kind"] == "untrimmed" and info["num_sequences"] == 13
    assert info["splits"] == {"xsub/train": 9, "xsub/val": 4, "xview/train": 9, "xview/val": 4}
    meta = json.loads((out / "untrimmed" / "meta.json").read_text())
    assert meta["preprocessing"]["steps"] == ["center", "align"]  # no repair on recordings


def test_unknown_format_is_a_one_line_usage_error(tmp_path, capsys):
    code, _, err = _run(
        capsys, "data", "convert", str(tmp_path), "--format", "kinect", "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert (
        err.startswith("error: ") and "invalid choice: 'kinect'" in err and len(err.strip().splitlines()) == 1
    )


def test_bad_input_exit_2_and_debug_traceback(tmp_path, capsys):
    bad = tmp_path / "ucla" / "all_sqe"
    bad.mkdir(parents=True)
    (bad / "a01_s01_e01_v01.json").write_text('{"file_name": "a01_s01_e01_v01", "skeletons": [[[0, 0')
    argv = ["data", "convert", str(tmp_path / "ucla"), "--format", "nw-ucla", "--out", str(tmp_path / "o")]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and "a01_s01_e01_v01.json" in err and "Traceback" not in err
    code, _, err = _run(capsys, "--debug", *argv)
    assert code == 2 and "Traceback" in err


def test_skip_bad_reports_every_skipped_sample(tmp_path, capsys):
    src = tmp_path / "ucla" / "all_sqe"
    src.mkdir(parents=True)
    for name in ("a01_s01_e01_v01", "a02_s01_e01_v02"):
        (src / f"{name}.json").write_text((real_data("nw_ucla", "all_sqe") / f"{name}.json").read_text())
    (src / "a03_s01_e01_v03.json").write_text("{broken")
    out = tmp_path / "o"
    code, stdout, _ = _run(
        capsys,
        "data",
        "convert",
        str(tmp_path / "ucla"),
        "--format",
        "nw-ucla",
        "--out",
        str(out),
        "--skip-bad",
    )
    assert code == 0 and "skipped 1 bad samples" in stdout
    report = json.loads((out / "skipped.json").read_text())
    assert len(report) == 1 and report[0]["path"].endswith("a03_s01_e01_v03.json")


def test_internal_failure_exits_1(monkeypatch, capsys, nwucla_store):
    import pcm3.commands.data as data_cmd

    def boom(path):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(data_cmd, "store_summary", boom)
    code, _, err = _run(capsys, "data", "info", str(nwucla_store))
    assert code == 1 and "internal error: RuntimeError: disk on fire" in err


def test_missing_store_is_exit_2(tmp_path, capsys):
    code, _, err = _run(capsys, "data", "info", str(tmp_path / "nope"))
    assert code == 2 and "no such store folder" in err


def test_preprocess_none_keeps_raw_coordinates(tmp_path, capsys):
    out = tmp_path / "raw"
    code, _, _ = _run(
        capsys,
        "data",
        "convert",
        str(real_data("ntu_rgbd_samples", "skeletons")),
        "--format",
        "ntu-raw",
        "--out",
        str(out),
        "--preprocess",
        "none",
    )
    assert code == 0
    from pcm3.data import open_store

    store = open_store(out)
    assert store.meta["preprocessing"]["steps"] == [] and len(store) == 12
    assert np.abs(store.sample(0)[2]).mean() > 1.0  # Kinect z (depth, metres) untouched
