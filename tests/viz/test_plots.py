"""Benchmark pictures: each writes a non-empty PNG; empty or inconsistent input is refused."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
from PIL import Image

from pcm3.errors import Pcm3Error
from pcm3.viz.plots import (
    class_colours,
    plot_confusion,
    plot_detection_timeline,
    plot_training_curves,
    read_metrics_jsonl,
)
from pcm3.viz.plots import plot_tsne as plot_tsne_fn

NAMES = ["wave", "clap", "kick"]


def _check_png(path):
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.size[0] > 200 and image.size[1] > 100
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 1  # something was drawn


def test_tsne_writes_png_and_subsamples(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2, -1] * 10)
    features = rng.normal(size=(40, 8)) + labels[:, None] * 3
    backend = matplotlib.get_backend()
    path = plot_tsne_fn(features, labels, NAMES, tmp_path / "sub" / "tsne.png", seed=0)
    _check_png(path)
    assert matplotlib.get_backend() == backend  # no global backend switch
    import sklearn.manifold

    import pcm3.viz.plots as plots

    fitted = []

    class Recording(sklearn.manifold.TSNE):
        def fit_transform(self, x, y=None):
            fitted.append(x.shape)
            return np.zeros((x.shape[0], 2)) + np.arange(x.shape[0])[:, None]

    monkeypatch.setattr(sklearn.manifold, "TSNE", Recording)
    monkeypatch.setattr(plots, "MAX_TSNE_POINTS", 25)
    plot_tsne_fn(features, labels, NAMES, tmp_path / "tsne_small.png", seed=0)
    assert fitted == [(25, 8)]


def test_tsne_refuses_empty_and_mismatched(tmp_path):
    with pytest.raises(Pcm3Error, match="N > 0"):
        plot_tsne_fn(np.zeros((0, 4)), np.zeros(0), NAMES, tmp_path / "x.png")
    with pytest.raises(Pcm3Error, match="labels of shape"):
        plot_tsne_fn(np.zeros((6, 4)), np.zeros(5), NAMES, tmp_path / "x.png")
    with pytest.raises(Pcm3Error, match="NaN"):
        plot_tsne_fn(np.full((6, 4), np.nan), np.zeros(6), NAMES, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_confusion_is_row_normalised(tmp_path, monkeypatch):
    y_true = np.array([0, 0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 0])
    shown = []
    from matplotlib.axes import Axes

    original = Axes.imshow

    def recording(self, data, *args, **kwargs):
        shown.append(np.asarray(data))
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(Axes, "imshow", recording)
    _check_png(plot_confusion(y_true, y_pred, NAMES, tmp_path / "confusion.png"))
    expected = np.array([[0.75, 0.25, 0], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(shown[0], expected)


def test_confusion_refuses_bad_input(tmp_path):
    with pytest.raises(Pcm3Error, match="no predictions"):
        plot_confusion(np.zeros(0), np.zeros(0), NAMES, tmp_path / "c.png")
    with pytest.raises(Pcm3Error, match=r"label 3 outside 0\.\.2"):
        plot_confusion(np.array([0, 3]), np.array([0, 1]), NAMES, tmp_path / "c.png")
    with pytest.raises(Pcm3Error, match="equal length"):
        plot_confusion(np.array([0, 1]), np.array([0]), NAMES, tmp_path / "c.png")


def test_detection_timeline(tmp_path):
    sequences = [
        {"name": "rec0", "length": 300, "truth": [(0, 10, 80), (2, 150, 220)],
         "pred": [(0, 12, 75, 0.9), ("kick", 160, 230, 0.3)]},
        {"name": "rec1", "length": 200, "truth": [(1, 20, 60)], "pred": []},
    ]
    _check_png(plot_detection_timeline(sequences, NAMES, tmp_path / "timeline.png"))
    with pytest.raises(Pcm3Error, match="no sequences"):
        plot_detection_timeline([], NAMES, tmp_path / "t.png")
    with pytest.raises(Pcm3Error, match="has no 'truth'"):
        plot_detection_timeline([{"name": "a", "length": 5, "pred": []}], NAMES, tmp_path / "t.png")
    with pytest.raises(Pcm3Error, match="unknown class 'jump'"):
        plot_detection_timeline([{"name": "a", "length": 5, "truth": [("jump", 0, 2)], "pred": []}], NAMES,
                                tmp_path / "t.png")
    with pytest.raises(Pcm3Error, match=r"segment \[4, 4\) is empty"):
        plot_detection_timeline([{"name": "a", "length": 5, "truth": [(0, 4, 4)], "pred": []}], NAMES,
                                tmp_path / "t.png")


def _write_metrics(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_training_curves_from_trainer_rows(tmp_path):
    rows = []
    for step in range(1, 21):
        rows.append({"step": step, "epoch": step / 10, "loss": 5.0 / step + 1, "contrast": 2.0 / step + 0.5,
                     "reconstruction": 0.1 / step, "lr": 0.02 * (1 - step / 20), "samples_per_s": 50.0})
        if step % 10 == 0:
            rows.append({"step": step, "epoch": step / 10, "knn_top1": step / 40})
    path = _write_metrics(tmp_path / "metrics.jsonl", rows)
    assert len(read_metrics_jsonl(path)) == 22
    _check_png(plot_training_curves(path, tmp_path / "curves.png"))
    # without the 1-NN rows: still a picture (two panels)
    path = _write_metrics(tmp_path / "no_knn.jsonl", [r for r in rows if "knn_top1" not in r])
    _check_png(plot_training_curves(path, tmp_path / "curves2.png"))


def test_training_curves_refuse_missing_empty_and_broken(tmp_path):
    with pytest.raises(Pcm3Error, match="no training metrics file"):
        plot_training_curves(tmp_path / "absent.jsonl", tmp_path / "c.png")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(Pcm3Error, match="no loss or 1-NN values"):
        plot_training_curves(tmp_path / "empty.jsonl", tmp_path / "c.png")
    (tmp_path / "broken.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss"\n')
    with pytest.raises(Pcm3Error, match=r"broken.jsonl:2: not a JSON line"):
        plot_training_curves(tmp_path / "broken.jsonl", tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_class_colours_are_distinct():
    for k in (3, 15, 60):
        colours = class_colours(k)
        assert colours.shape == (k, 4)
        assert len({tuple(np.round(c, 4)) for c in colours}) == k
