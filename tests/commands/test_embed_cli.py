"""``pcm3 embed`` on a store and on (fake) videos, and ``pcm3.load_encoder`` on the same files."""

import json

import numpy as np
import pytest

import pcm3
from pcm3.cli import main
from pcm3.data import Converted, Sample, open_store, write_store
from pcm3.layouts import NTU25

from ..conftest import TINY_MODEL
from ..data.pose.fake_pose import FakePose, open_fake_video, write_fake_video


def _pretrained(store, out) -> str:
    assert main(["pretrain", "--out", str(out), f"data={store}", *TINY_MODEL, "max_steps=1"]) == 0
    exported = out / "encoder.safetensors"
    assert main(["export", str(out / "checkpoints" / "last.pt"), "--out", str(exported)]) == 0
    return str(exported)


@pytest.fixture(scope="module")
def hands_encoder(tiny_store_path, tmp_path_factory):
    return _pretrained(tiny_store_path, tmp_path_factory.mktemp("hands_run"))


@pytest.fixture(scope="module")
def ntu_encoder(tmp_path_factory):
    """An encoder of NTU's layout, one person (pre-trained one step on random walks)."""
    rng = np.random.default_rng(0)
    samples = [Sample(f"s{i}", rng.normal(size=(3, 24, 25, 1)).cumsum(1).astype(np.float32), i % 2)
               for i in range(16)]
    ids = [s.id for s in samples]
    store = tmp_path_factory.mktemp("ntu") / "store"
    write_store(store, Converted(NTU25, ["a", "b"], samples, {"train": ids[:12], "val": ids[12:]}))
    return _pretrained(store, tmp_path_factory.mktemp("ntu_run"))


def test_embed_a_store_and_the_python_api_agree(hands_encoder, tiny_store_path, tmp_path, capsys):
    out = tmp_path / "feats" / "clips.npy"
    assert main(["embed", "--encoder", hands_encoder, "--data", str(tiny_store_path), "--out", str(out)]) == 0
    assert "24 clips ->" in capsys.readouterr().out
    store = open_store(tiny_store_path)
    features = np.load(out)
    assert features.shape == (24, pcm3.load_encoder(hands_encoder).feature_dim)
    assert (tmp_path / "feats" / "clips.ids.txt").read_text().split() == list(store.ids)
    meta = json.loads((tmp_path / "feats" / "clips.json").read_text())
    assert meta["lengths"] == store.lengths.tolist() and meta["layout"] == "hands8" and not meta["dense"]
    x = np.asarray(store.x[:]).transpose(0, 4, 2, 3, 1)
    api = pcm3.load_encoder(hands_encoder).encode(x, store.lengths, preprocess=False)
    np.testing.assert_allclose(features, api, rtol=1e-5, atol=1e-6)
    # one split, per frame: rows clip after clip
    dense = tmp_path / "val.npy"
    assert main(["embed", "--encoder", hands_encoder, "--data", str(tiny_store_path), "--out", str(dense),
                 "--split", "xsub/val", "--dense", "--dense-mode", "sequence"]) == 0
    val = store.split("xsub/val")
    assert np.load(dense).shape == (int(val.lengths.sum()), features.shape[1])
    assert (tmp_path / "val.ids.txt").read_text().split() == list(val.ids)
    assert main(["embed", "--encoder", hands_encoder, "--data", str(tiny_store_path), "--out",
                 str(tmp_path / "x.txt")]) == 2
    assert "must end in .npy" in capsys.readouterr().err


def test_embed_videos_onto_an_ntu_encoder(ntu_encoder, tmp_path, capsys, monkeypatch):
    import pcm3.data.pose.frames as frames
    import pcm3.data.pose.mediapipe_pose as mediapipe_pose

    monkeypatch.setattr(frames, "open_video", open_fake_video)
    monkeypatch.setattr(mediapipe_pose, "MediaPipePose", FakePose)
    videos = tmp_path / "videos"
    write_fake_video(videos / "wave" / "a.mp4", [0, 3, 4, 5, 9, 8])
    write_fake_video(videos / "b.mp4", [2, 2, 3])
    write_fake_video(videos / "c.mp4", [0, 0])
    out = tmp_path / "v.npy"
    argv = ["embed", "--encoder", ntu_encoder, "--data", str(videos), "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    assert "c.mp4: no person found" in capsys.readouterr().err
    assert main([*argv, "--skip-bad"]) == 2
    assert "add --map-layout ntu25" in capsys.readouterr().err
    assert main([*argv, "--skip-bad", "--map-layout", "ntu25", "--dense"]) == 0
    printed = capsys.readouterr().out
    assert "8 frames of 2 clips" in printed and "c.mp4: no person found" in printed
    meta = json.loads((tmp_path / "v.json").read_text())
    assert meta["ids"] == ["b", "wave/a"] and meta["lengths"] == [3, 5] and meta["first_frame"] == [0, 1]
    assert meta["data_layout"] == "mediapipe33" and meta["layout"] == "ntu25"
    assert np.load(out).shape[0] == 8
    one_video = ["embed", "--encoder", ntu_encoder, "--data", str(videos / "wave" / "a.mp4"),
                 "--out", str(out)]
    assert main([*one_video, "--map-layout", "kinect_v1_20"]) == 2
    assert "the encoder reads layout 'ntu25'" in capsys.readouterr().err


def test_the_embedding_guide_runs_as_written(hands_encoder, tmp_path, monkeypatch, capsys):
    import re
    import shutil
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "embedding.md").read_text()
    # the section "In Python" (the ONNX section has its own, run by tests/models/test_onnx_export.py)
    (code,) = re.findall(r"## In Python\n.*?```python\n(.*?)```", doc, flags=re.S)
    assert len(code.strip().splitlines()) <= 12
    monkeypatch.chdir(tmp_path)
    shutil.copy(hands_encoder, "encoder.safetensors")
    rng = np.random.default_rng(5)
    np.save("my_clips.npy", rng.normal(size=(12, 20, 8, 3)).cumsum(axis=1).astype(np.float32))  # hands8
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["features"].shape == (12, pcm3.load_encoder("encoder.safetensors").feature_dim)
    assert len(namespace["similar"]) == 5 and 0 not in namespace["similar"]
    assert namespace["groups"].shape == (12,) and "most like clip 0" in capsys.readouterr().out


def test_clips_are_batched_by_frames_without_changing_features(hands_encoder, tiny_store_path):
    from pcm3.embedding_inputs import embed_clips, store_clips

    embedder = pcm3.load_encoder(hands_encoder)
    clips = store_clips(tiny_store_path)
    whole, lengths = embed_clips(embedder, clips)
    small, _ = embed_clips(embedder, clips, frames_per_batch=60)  # 2 or 3 clips per batch
    np.testing.assert_allclose(small, whole, rtol=1e-5, atol=1e-6)
    dense, dense_lengths = embed_clips(embedder, clips, dense=True, frames_per_batch=60)
    assert dense.shape[0] == lengths.sum() and (dense_lengths == open_store(tiny_store_path).lengths).all()
