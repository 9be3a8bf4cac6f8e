"""The pure parts of the benchmark scripts: mode specs, table arithmetic, seed aggregation."""

import json
from pathlib import Path

import pytest

from ..benchmark_scripts import BENCHMARKS, load_benchmark

speed = load_benchmark("detection_speed")
ablation = load_benchmark("ablation_pcm3pp")


def test_mode_specs_map_to_detection_options():
    assert speed.mode_options("window") == {"features": "window"}
    assert speed.mode_options("window:batch=1") == {"features": "window", "window_batch": 1}
    assert speed.mode_options("sequence:stride=4,context=64,lookahead=32") == {
        "features": "sequence", "sequence_stride": 4, "sequence_context": 64, "sequence_lookahead": 32}
    for bad in ("frames", "window:stride=2", "sequence:context=x", "sequence:stride"):
        with pytest.raises(SystemExit, match="mode"):
            speed.mode_options(bad)


def test_speed_up_is_relative_to_the_official_loop_of_the_same_dataset():
    metrics = {"map@0.1": 1.0, "map@0.3": 1.0, "map@0.5": 1.0, "frame_accuracy": 1.0}
    row = {"train": 1, "test": 1, "frames": 1000, "metrics": metrics, "classes": 1, "ignored": 0}
    rows = [{**row, "dataset": "a", "mode": "window:batch=1", "seconds": 10.0},
            {**row, "dataset": "a", "mode": "sequence", "seconds": 0.2},
            {**row, "dataset": "b", "mode": "sequence", "seconds": 0.5}]
    lines = speed.markdown(rows).splitlines()[2:]
    assert [line.split("|")[7].strip() for line in lines] == ["1.0", "50.0", "-"]
    assert "official loop" in lines[0]


def test_ablation_aggregate_is_mean_and_sample_std(tmp_path):
    runs = []
    for seed, (knn, det) in enumerate([(50.0, 10.0), (54.0, 14.0)]):
        run = tmp_path / f"s{seed}"
        run.mkdir()
        row = {"name": "contrast", "pretrained": [knn, 60.0], "random-init": [40.0, 45.0],
               "raw": [55.0, 50.0]}
        (run / "results.jsonl").write_text(json.dumps(row) + "\n")
        (run / "contrast_detection.json").write_text(json.dumps({"map@0.5": det}) + "\n")
        runs.append(run)
    table = ablation.aggregate(runs, distill_epochs=10).splitlines()
    contrast = next(line for line in table if line.startswith("| contrastive only"))
    assert "| 52.0 ± 2.8 | 60.0 ± 0.0 | 12.0 ± 2.8 | 2 |" in contrast
    assert next(line for line in table if line.startswith("| + clip")).endswith("|  |  |  | 0 |")


pretrain_speed = load_benchmark("pretrain_speed")
machine_blocks = load_benchmark("machine_blocks")


def test_cpu_kind_names_what_decides_the_step_speed():
    kind = machine_blocks.cpu_kind
    assert kind(frozenset({"avx2"})) == "avx2"
    assert kind(frozenset({"avx2", "avx512f"})) == "avx512"
    assert kind(frozenset({"avx2", "avx512f", "avx512_bf16"})) == "avx512_bf16"
    assert kind(frozenset({"avx512_bf16", "amx_tile", "amx_bf16"})) == "amx_bf16"
    assert kind(frozenset()) == "other"


def test_write_block_keeps_the_table_of_each_kind_of_cpu():
    def block(kind, body):
        return f"<!-- results:start {kind} -->\n{body}\n<!-- results:end {kind} -->"

    fast, slow = block("avx512_bf16", "old fast"), block("avx2", "new slow")
    added = machine_blocks.write_block(f"# Speed\n\n{fast}\n\nNotes.\n", slow, "avx2")
    assert added == f"# Speed\n\n{fast}\n\n{slow}\n\nNotes.\n"
    replaced = machine_blocks.write_block(added, block("avx2", "rerun"), "avx2")
    assert "rerun" in replaced and "new slow" not in replaced and "old fast" in replaced
    assert replaced.index("old fast") < replaced.index("rerun") < replaced.index("Notes.")
    first = machine_blocks.write_block("# Speed\n", block("avx2", "x"), "avx2")
    assert first == f"# Speed\n\n{block('avx2', 'x')}\n"


def test_auto_variant_runs_the_precision_the_policy_picks(monkeypatch):
    from ..engine.hardware_fakes import AVX2_ONLY, AVX512_BF16, use_probe

    use_probe(monkeypatch, AVX2_ONLY)
    assert pretrain_speed.variant_precision("auto") == "fp32"
    use_probe(monkeypatch, AVX512_BF16)
    assert pretrain_speed.variant_precision("auto") == "bf16"
    assert pretrain_speed.variant_precision("reference") == "fp32"
    assert pretrain_speed.variant_precision("bf16") == "bf16"
    assert "auto" in pretrain_speed.VARIANTS
pkummd = load_benchmark("detection_pkummd")


def test_pkummd_benchmark_scores_one_run_under_every_metric():
    import numpy as np

    from pcm3.tasks.detection import DetectionOutput
    from pcm3.tasks.detection_metrics import Segment

    # two recordings, 3 classes; class 2 was left out (no training intervals)
    truth = {0: np.array([[0, 0, 10], [1, 20, 30]]), 1: np.array([[0, 0, 10]])}
    predictions = {0: [Segment(0, 0, 10, 0.9), Segment(1, 20, 30, 0.8), Segment(2, 40, 50, 0.7)], 1: []}
    out = DetectionOutput({"frame_accuracy": 42.0}, predictions, truth, ["a", "b"], np.array([60, 20]),
                          ["x", "y", "z"], "xsub/val", ignored_classes=[2])
    values = pkummd.all_metrics(out, 3)
    assert set(values) == {key for key, _ in pkummd.COLUMNS}
    # class 0: one of two found (AP 1/2), class 1: AP 1 -> ours 75; PKU-MMD over the 2 slots left
    assert values["map@0.5"] == values["voc@0.5"] == 75.0 and values["action@0.5"] == 75.0
    assert values["video@0.5"] == 50.0 and values["frame_accuracy"] == 42.0


def test_pkummd_benchmark_table_is_mean_and_sample_std_per_protocol():
    base = {key: 10.0 for key, _ in pkummd.COLUMNS}
    rows = [{"protocol": "ours", "seed": s, "values": {**base, "map@0.5": v}}
            for s, v in enumerate([20.0, 24.0])]
    rows.append({"protocol": "official", "seed": 0, "values": base})
    lines = pkummd.markdown(rows).splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| ours | defaults | 10.0 ± 0.0 | 10.0 ± 0.0 | 22.0 ± 2.8 |")
    assert lines[3].startswith("| official | `batchnorm=train`, `train_window_strides=[3, 4, 5]` | 10.0 |")
    assert lines[2].endswith("| 2 |") and lines[3].endswith("| 1 |")


@pytest.mark.parametrize("backbone", ["bigru", "stgcn", "transformer"])
@pytest.mark.parametrize("size", ["paper", "cpu", "tiny"])
def test_pretrain_speed_configs_build_for_every_backbone(backbone, size):
    cfg = pretrain_speed.make_config(size, "fp32", backbone)
    assert cfg.model.backbone == backbone and cfg.batch_size == pretrain_speed.SIZES[size]["batch"]


def test_ablation_and_clip_reading_overrides_still_read_on_the_quick_config():
    """The scripts pass the older top-level spelling (``loss.masked=1``, ``clip.source=key``) on
    configs/pcm3_quick.yaml, whose settings sit in its ``pcm3`` block: each row gets what it names."""
    from pcm3.config import load_config
    from pcm3.engine.config import PretrainConfig

    quick = BENCHMARKS.parent / "configs" / "pcm3_quick.yaml"
    rows = {name: load_config(PretrainConfig, quick, [*ablation.VIEW, *o]) for name, _, o in ablation.ROWS}
    assert [rows[n].method_options.loss.masked for n in ("contrast", "pairs", "guidance")] == [0.0, 1.0, 1.0]
    assert not rows["pairs"].method_options.loss.semantic_guidance
    assert rows["clip"].method == "pcm3pp" and rows["clip"].method_options.loss.reconstruction == 40.0
    assert rows["clip"].method_options.moco.queue_size == 256  # the quick config's, read as PCM3++'s base
    readings = load_benchmark("clip_readings").READINGS
    for name, source, path in (("ours", "query", "crop"), ("paper", "key", "in_place")):
        cfg = load_config(PretrainConfig, quick, [*ablation.MASK_ON, "method=pcm3pp", *readings[name]])
        assert (cfg.method_options.clip.source, cfg.method_options.clip.path) == (source, path)


methods_table = load_benchmark("methods_table")


def test_methods_table_seeds_every_pretraining_and_keeps_checkpoints_and_tasks():
    bench = {"seed": 0, "tasks": {"linear": {}, "knn": {}, "occlusion": {}},
             "encoders": [{"method": "pcm3", "overrides": {"epochs": 3}}, {"checkpoint": "a.pt"}]}
    seeded = methods_table.seeded_bench(bench, 7, ["linear", "knn"])
    assert seeded["seed"] == 7 and list(seeded["tasks"]) == ["linear", "knn"]
    assert seeded["encoders"] == [{"method": "pcm3", "overrides": {"epochs": 3, "seed": 7}},
                                  {"checkpoint": "a.pt"}]
    assert bench["encoders"][0]["overrides"] == {"epochs": 3}  # the input is not changed
    with pytest.raises(SystemExit, match="semi"):
        methods_table.seeded_bench(bench, 1, ["semi"])


def _seed_rows(seed, linear, knn, occlusion=None, error=""):
    row = {"split": "-", "seed": seed, "seconds": 1.0, "error": ""}
    rows = [{**row, "encoder": "pcm3/bigru", "task": "linear", "metric": "top1", "value": linear},
            {**row, "encoder": "pcm3/bigru", "task": "knn", "metric": "top1", "value": knn},
            {**row, "encoder": "raw", "task": "linear", "metric": "top1", "value": 10.0},
            {**row, "encoder": "raw", "task": "linear", "metric": "top5", "value": 90.0}]
    if occlusion is not None:
        rows.append({**row, "encoder": "pcm3/bigru", "task": "occlusion", "metric": "top1_spatial",
                     "value": occlusion})
    if error:
        rows.append({**row, "encoder": "cmd/bigru", "task": "pretrain", "metric": "error", "value": None,
                     "error": error})
    return {"rows": rows, "minutes": {"pcm3/bigru": 4.0 + seed}, "provenance": {}}


def test_methods_table_is_mean_and_sample_std_over_seeds_and_others_from_the_lowest_seed():
    seeds = {0: _seed_rows(0, 60.0, 50.0, occlusion=30.0), 1: _seed_rows(1, 62.0, 54.0, occlusion=99.0),
             2: _seed_rows(2, 64.0, 52.0, error="RuntimeError: boom")}
    lines = methods_table.table(seeds).splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "encoder", "linear/top1 (seeds)", "knn/top1 (seeds)", "occlusion/top1_spatial", "pre-training min",
        "error"]
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
             for line in lines[2:]}
    assert cells["pcm3/bigru"][1:5] == ["62.0 ± 2.0 (3)", "52.0 ± 2.0 (3)", "30.0", "5.0"]
    assert cells["raw"][1:3] == ["10.0 ± 0.0 (3)", "-"]
    assert cells["cmd/bigru"][1] == "-" and "boom" in cells["cmd/bigru"][5]


def test_tuning_takes_a_bench_entry_config_then_the_overrides(tmp_path):
    tune = load_benchmark("tune_small_data")
    bench = Path(__file__).resolve().parents[2] / "configs" / "bench_methods_nwucla.yaml"
    cfg = tune.entry_config(bench, "skeletonclr/stgcn", tmp_path, ["split=tune/train", "epochs=3"])
    assert (cfg.method, cfg.model.backbone, cfg.split, cfg.epochs, cfg.data) == (
        "skeletonclr", "stgcn", "tune/train", 3, str(tmp_path))
    with pytest.raises(SystemExit, match="skeletonclr/stgcn"):
        tune.entry_config(bench, "nope/gru", tmp_path, [])


def test_write_marked_replaces_only_its_block_and_creates_a_missing_file(tmp_path):
    path, start, end = tmp_path / "README.md", "<!-- a:start -->", "<!-- a:end -->"
    machine_blocks.write_marked(path, start, end, f"{start}\none\n{end}")
    path.write_text(path.read_text() + "tail\n")
    machine_blocks.write_marked(path, start, end, f"{start}\ntwo\n{end}")
    text = path.read_text()
    assert text.startswith("# Benchmarks\n") and "two" in text and "one" not in text
    assert text.endswith("tail\n")
