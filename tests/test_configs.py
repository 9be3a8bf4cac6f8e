from pathlib import Path

import pytest

from pcm3.config import load_config
from pcm3.engine.config import PretrainConfig
from pcm3.methods.pcm3_options import MoCoConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("pcm3_*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_loads(path):
    cfg = load_config(PretrainConfig, path)
    assert cfg.method == "pcm3"


@pytest.mark.parametrize(
    "path", [p for p in CONFIGS if "ntu" in p.stem or "pku" in p.stem], ids=lambda p: p.stem
)
def test_paper_configs_have_the_paper_settings(path):
    cfg = load_config(PretrainConfig, path)
    assert (cfg.batch_size, cfg.optim.lr, cfg.optim.weight_decay, cfg.epochs) == (128, 0.02, 1e-4, 451)
    assert cfg.optim.milestones == [351] and cfg.method_options.moco == MoCoConfig(16384, 0.999)
    assert cfg.model.backbone == "bigru" and cfg.model.decoder_hidden_size == 512
    assert (cfg.model.options.hidden_size, cfg.model.options.num_layers) == (1024, 3)


def test_quick_configs_exist():
    assert any("quick" in p.stem for p in CONFIGS)


ALL_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def _precisions(path: Path) -> dict[str, tuple[str, str]]:
    """Every precision a shipped config sets: ``{where: (resolved value, value the file states or
    "auto" when it states none)}`` for the pre-training config and each task that has one."""
    import yaml

    from pcm3.config import from_dict
    from pcm3.tasks.bench import BenchConfig, task_configs
    from pcm3.tasks.bench_encoders import resolve_entries
    from pcm3.tasks.bench_pretraining import pretrain_config

    data = yaml.safe_load(path.read_text())
    if "method" in data:  # a pre-training config (bench configs have no method key)
        return {"precision": (load_config(PretrainConfig, path).precision, data.get("precision", "auto"))}
    bench = from_dict(BenchConfig, data)
    resolved = resolve_entries(bench.encoders, "x", "auto")
    sources = {"pretrain": (bench.pretrain, pretrain_config(bench))} if not bench.encoders else {
        f"encoders[{i}]": (entry, r.pretrain) for i, (entry, r) in enumerate(zip(bench.encoders, resolved,
                                                                                  strict=True))}
    out = {}
    for where, (source, pretrain) in sources.items():
        stated = (source.overrides or {}).get("precision")
        pretrain_file = yaml.safe_load((path.parents[1] / source.config).read_text()) if source.config else {}
        out[f"{where}.precision"] = (pretrain.precision, stated or pretrain_file.get("precision", "auto"))
    for name, task in task_configs(bench).items():
        if hasattr(task, "precision"):
            stated = (data["tasks"][name] or {}).get("precision", "auto")
            out[f"tasks.{name}.precision"] = (task.precision, stated)
    return out


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=[p.stem for p in ALL_CONFIGS])
def test_every_shipped_config_resolves_to_auto_unless_it_says_otherwise(path, monkeypatch):
    monkeypatch.chdir(path.parents[1])  # bench configs name their pre-training config from the root
    found = _precisions(path)
    assert found, f"{path.name} sets no precision anywhere"
    for where, (resolved, stated) in found.items():
        assert resolved == stated, f"{path.name}: {where} is {resolved!r}, the file says {stated!r}"


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=[p.stem for p in ALL_CONFIGS])
def test_no_shipped_config_forces_a_precision(path, monkeypatch):
    """Shipped configs run on any machine: a forced bf16 is 11-41x slower on an AVX2-only CPU."""
    monkeypatch.chdir(path.parents[1])
    assert {resolved for resolved, _ in _precisions(path).values()} == {"auto"}


def test_post_distillation_preset_is_eq_10_at_the_paper_scale():
    path = CONFIGS[0].parent / "pcm3pp_post_distill_ntu60_xsub.yaml"
    cfg = load_config(PretrainConfig, path)
    paper = load_config(PretrainConfig, CONFIGS[0].parent / "pcm3_ntu60_xsub.yaml")
    assert (cfg.method, cfg.stage, cfg.stream) == ("pcm3pp", "post_distill", "joint")
    assert cfg.post_distill_terms == ["kl", "clip_kl"]
    assert (cfg.epochs, cfg.optim.lr, cfg.optim.schedule) == (151, 0.002, "constant")
    assert (cfg.model, cfg.method_options.moco, cfg.batch_size, cfg.split) == (
        paper.model, paper.method_options.moco, 128, paper.split)
    text = path.read_text()
    assert all(f"# {word}" in text for word in ("Terms:", "Epochs:", "Learning rate:"))  # with reasons


def test_fewshot_preset_is_the_survey_setup():
    from pcm3.tasks.bench import BenchConfig, task_configs
    from pcm3.tasks.bench_pretraining import pretrain_config

    cfg = load_config(BenchConfig, CONFIGS[0].parent / "bench_fewshot_ntu60_to_ntu120.yaml")
    fewshot = task_configs(cfg)["fewshot"]
    footnote = [60, 61, 66, 69, 72, 78, 79, 80, 84, 90, 91, 95, 96, 98, 99, 100, 102, 106, 108, 111, 113, 114,
                115]
    assert fewshot.novel_classes == footnote and (fewshot.ways, fewshot.shots) == (5, [1, 5])
    assert (fewshot.data, fewshot.train_split, fewshot.test_split) == ("data/ntu120", "xset/train",
                                                                       "xset/val")
    assert pretrain_config(cfg).data == "data/ntu60" and list(cfg.tasks) == ["fewshot"]
