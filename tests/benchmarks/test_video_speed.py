"""The pure part of benchmarks/video_speed.py: its results block."""

import argparse
from pathlib import Path

from ..benchmark_scripts import load_benchmark

speed = load_benchmark("video_speed")


def test_results_block_names_the_setting_and_every_backbone():
    args = argparse.Namespace(size=(640, 480), threads=2, frames=300, clips=256, dense_clips=8,
                              clip_frames=100, batch=64, config=Path("configs/pcm3_ntu60_xsub.yaml"))
    rows = [{"backbone": "bigru", "dim": 2048, "view": 64, "clip": 12.34, "dense": 3.21, "preprocess": 900.4,
             "torch_view": 20.04, "onnx_view": 25.06},
            {"backbone": "other", "dim": 256, "view": 32, "clip": 100.0, "dense": 50.0, "preprocess": 1000.0,
             "torch_view": 110.0, "onnx_view": None}]
    block = speed.markdown({"pose": 25.04, "decode": 410.2, "found": 299}, rows, args, ("1.0", "2.0"))
    lines = block.splitlines()
    assert lines[0] == speed.START and lines[-1] == speed.END
    assert "person found in 299 of 300 frames): **25.0 frames/s** (decoding alone 410 frames/s)" in block
    assert "256 clips of 100 frames (8 clips for per-frame features)" in block
    assert "| bigru | 2048 | 64 | 12.3 | 3.2 | 900 | 20.0 | 25.1 |" in lines
    assert "| other | 256 | 32 | 100.0 | 50.0 | 1000 | 110.0 | – |" in lines


def test_every_backbone_is_built_from_a_config_written_for_another():
    config = Path(__file__).resolve().parents[2] / "configs" / "pcm3_ntu60_xsub.yaml"  # a bigru block
    assert speed.config_for(config, "bigru").model.options.hidden_size == 1024
    stgcn = speed.config_for(config, "stgcn").model
    assert stgcn.backbone == "stgcn" and not hasattr(stgcn.options, "hidden_size")
