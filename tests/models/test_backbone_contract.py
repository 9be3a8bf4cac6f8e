"""The backbone contract, checked on every registered backbone (as timm checks every model).

Each backbone runs with its ``tiny()`` options (and the BiGRU also as a true bidirectional GRU)
over layouts x persons x 2-D/3-D x joint/motion/bone: the output shapes for the whole product,
and for a pairwise-covering subset of it the costlier checks: a gradient on every parameter,
invariance to padding past ``lengths``, causality where claimed, identical eval outputs on
repeat, one or per-sample input prompts, spec -> build -> load and safetensors round trips.
A new backbone file is covered without writing a test. The 2-process DDP check is
``test_backbone_ddp.py``.
"""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from pcm3.config import to_dict
from pcm3.layouts import COCO17, KINECT_V1_20, NTU25, Layout, load_layout_yaml
from pcm3.modalities import to_stream
from pcm3.models.encoder import Backbone, EncoderSpec, build_encoder
from pcm3.models.encoder_files import read_encoder, save_encoder
from pcm3.models.registry import get_backbone, known_backbones

from ..conftest import FrameMLP  # noqa: F401  (registers the test-only backbone, also in spawned workers)

CUSTOM_YAML = """name: arm_and_leg
joints: [hip, chest, shoulder, elbow, hand, knee, foot]
parents: [hip, hip, chest, shoulder, elbow, hip, knee]
parts: {arm: [shoulder, elbow, hand], leg: [knee, foot], trunk: [hip, chest]}
"""
LAYOUTS = ("ntu25", "kinect_v1_20", "coco17", "custom")
STREAMS = ("joint", "motion", "bone")
T = 16


def variants() -> list[tuple[str, dict]]:
    """(backbone, options): every registered backbone at its tiny size, plus option variants
    that change the contract's attributes."""
    out = [(name, to_dict(get_backbone(name).options.tiny())) for name in known_backbones()]
    out.append(("bigru", {**to_dict(get_backbone("bigru").options.tiny()), "bidirectional": True}))
    return out


VARIANTS = variants()
VARIANT_IDS = [f"{name}-{'bidir' if opts.get('bidirectional') else 'tiny'}" for name, opts in VARIANTS]

# (layout, stream, persons, channels): every pair of values of two factors appears in some row
PAIRWISE = [
    ("ntu25", "joint", 1, 2), ("ntu25", "motion", 2, 3), ("ntu25", "bone", 1, 3),
    ("kinect_v1_20", "joint", 2, 3), ("kinect_v1_20", "motion", 1, 2), ("kinect_v1_20", "bone", 2, 2),
    ("coco17", "joint", 1, 3), ("coco17", "motion", 2, 2), ("coco17", "bone", 2, 3),
    ("custom", "joint", 2, 2), ("custom", "motion", 1, 3), ("custom", "bone", 1, 2),
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: faster on one thread


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Layout]:
    path = tmp_path_factory.mktemp("layouts") / "arm_and_leg.yaml"
    path.write_text(CUSTOM_YAML)
    return {"ntu25": NTU25, "kinect_v1_20": KINECT_V1_20, "coco17": COCO17, "custom": load_layout_yaml(path)}


def make_input(layout: Layout, persons: int, channels: int, stream: str, n: int = 2, frames: int = T,
               seed: int = 0) -> torch.Tensor:
    """``(n, C, frames, V, M)``: the ``stream`` of random-walk joint coordinates."""
    g = torch.Generator().manual_seed(seed)
    joints = torch.randn(n, channels, frames, layout.num_joints, persons, generator=g).cumsum(2) * 0.1
    return to_stream(joints, stream, layout)


def build(name: str, options: dict, layout: Layout, persons: int, channels: int, stream: str = "joint",
          seed: int = 0):
    torch.manual_seed(seed)
    spec = EncoderSpec(name, options, channels, persons, layout, stream=stream, view_frames=T)
    return spec, build_encoder(spec).backbone


def test_pairwise_rows_cover_every_pair():
    factors = (LAYOUTS, STREAMS, (1, 2), (2, 3))
    for a, b in itertools.combinations(range(4), 2):
        seen = {(row[a], row[b]) for row in PAIRWISE}
        assert seen == set(itertools.product(factors[a], factors[b])), (a, b)


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=VARIANT_IDS)
def test_attributes(name, options, layouts):
    _, model = build(name, options, layouts["ntu25"], 2, 3)
    assert isinstance(model, Backbone)
    assert isinstance(model.feature_dim, int) and model.feature_dim > 0 and model.feature_dim % 2 == 0
    assert isinstance(model.time_stride, int) and model.time_stride >= 1
    assert isinstance(model.causal, bool)
    shape = model.input_prompt_shape
    assert isinstance(shape, tuple) and shape and all(isinstance(d, int) and d > 0 for d in shape)
    get_backbone(name).options(**options).validate()  # tiny() is a valid configuration


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("layout_name", LAYOUTS)
@pytest.mark.parametrize("persons", [1, 2])
@pytest.mark.parametrize("channels", [2, 3])
@pytest.mark.parametrize("stream", STREAMS)
def test_output_shapes(name, options, layout_name, persons, channels, stream, layouts):
    layout = layouts[layout_name]
    _, model = build(name, options, layout, persons, channels, stream)
    model.eval()
    d, s = model.feature_dim, model.time_stride
    with torch.no_grad():
        for frames in (T, T - 3):  # a length the time stride does not divide
            x = make_input(layout, persons, channels, stream, n=3, frames=frames)
            lengths = torch.tensor([frames, frames - 2, 5])
            assert model.forward_features(x).shape == (3, d)
            assert model.forward_features(x, lengths).shape == (3, d)
            assert model.forward_dense(x).shape == (3, math.ceil(frames / s), d)
            assert model.forward_dense(x, lengths).shape == (3, math.ceil(frames / s), d)


@pytest.fixture(params=[(v, row) for v in VARIANTS for row in PAIRWISE],
                ids=[f"{vid}-{'-'.join(map(str, row))}" for vid in VARIANT_IDS for row in PAIRWISE])
def case(request, layouts):
    """A backbone variant on one pairwise row: ``(spec, model, x, layout)``."""
    (name, options), (layout_name, stream, persons, channels) = request.param
    layout = layouts[layout_name]
    spec, model = build(name, options, layout, persons, channels, stream)
    return spec, model, make_input(layout, persons, channels, stream, n=3), layout


def prompt_for(model, rows: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, *model.input_prompt_shape, generator=g) * 0.5


def test_gradient_reaches_every_parameter_and_the_prompt(case):
    _, model, x, _ = case
    model.train()
    prompt = prompt_for(model, 1).requires_grad_(True)
    lengths = torch.tensor([T, T - 4, 9])
    loss = model.forward_features(x, lengths, input_prompt=prompt).square().sum()
    loss = loss + model.forward_dense(x, lengths, input_prompt=prompt).square().mean()
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"no gradient reaches {param_name}"
        assert torch.isfinite(param.grad).all(), param_name
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0
    assert prompt.grad is not None and prompt.grad.abs().sum() > 0


def test_padding_past_lengths_changes_nothing_in_eval_mode(case):
    _, model, x, _ = case
    model.eval()
    lengths = torch.tensor([T, T - 5, 7])
    noisy = x.clone()
    for i, n in enumerate(lengths.tolist()):
        noisy[i, :, n:] = torch.randn_like(noisy[i, :, n:]) * 5
    prompt = prompt_for(model, 3)
    with torch.no_grad():
        clean_f = model.forward_features(x, lengths, input_prompt=prompt)
        noisy_f = model.forward_features(noisy, lengths, input_prompt=prompt)
        clean_d = model.forward_dense(x, lengths, input_prompt=prompt)
        noisy_d = model.forward_dense(noisy, lengths, input_prompt=prompt)
    torch.testing.assert_close(noisy_f, clean_f, atol=1e-5, rtol=1e-5)
    for i, n in enumerate(lengths.tolist()):
        valid_steps = n // model.time_stride  # steps covering only valid frames
        torch.testing.assert_close(noisy_d[i, :valid_steps], clean_d[i, :valid_steps], atol=1e-5, rtol=1e-5)


def batch_norm_statistics(model) -> list[torch.Tensor]:
    return [t for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
            for t in (m.running_mean, m.running_var)]


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("row", [PAIRWISE[1], PAIRWISE[6]], ids=lambda r: "-".join(map(str, r)))
def test_padding_past_lengths_changes_nothing_in_train_mode(name, options, row, layouts):
    """Neither the values nor the amount of padding reach a train-mode feature or a BatchNorm's
    running statistics (padded frames stay out of the batch statistics). Dropout is off: its
    masks depend on the padded shape."""
    layout_name, stream, persons, channels = row
    layout = layouts[layout_name]
    options = {k: (0.0 if "drop" in k else v) for k, v in options.items()}
    x = make_input(layout, persons, channels, stream, n=3)
    lengths = torch.tensor([T, T - 5, 7])
    padded = torch.zeros(3, channels, T + 8, layout.num_joints, persons)
    padded[:, :, :T] = x
    for i, n in enumerate(lengths.tolist()):
        x[i, :, n:] = 0
        padded[i, :, n:] = torch.randn_like(padded[i, :, n:]) * 5
    features, statistics = [], []
    for batch in (x, padded):
        _, model = build(name, options, layout, persons, channels, stream)
        model.train()
        features.append(model.forward_features(batch, lengths, input_prompt=prompt_for(model, 3)))
        statistics.append(batch_norm_statistics(model))
    torch.testing.assert_close(features[1], features[0], atol=1e-4, rtol=1e-4)
    for a, b in zip(*statistics, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def claims_causality(name: str, options: dict) -> bool:
    return bool(build(name, options, NTU25, 1, 3)[1].causal)


CAUSAL = [(v, vid) for v, vid in zip(VARIANTS, VARIANT_IDS, strict=True) if claims_causality(*v)]


@pytest.mark.parametrize("variant", [v for v, _ in CAUSAL], ids=[vid for _, vid in CAUSAL])
@pytest.mark.parametrize("row", PAIRWISE, ids=lambda r: "-".join(map(str, r)))
def test_causal_steps_do_not_see_the_future(variant, row, layouts):
    """Only for the variants that claim ``causal`` (the others promise nothing here)."""
    (name, options), (layout_name, stream, persons, channels) = variant, row
    layout = layouts[layout_name]
    _, model = build(name, options, layout, persons, channels, stream)
    x = make_input(layout, persons, channels, stream, n=3)
    model.eval()
    cut = 8
    later = x.clone()
    later[:, :, cut:] += torch.randn_like(later[:, :, cut:])
    with torch.no_grad():
        a, b = model.forward_dense(x), model.forward_dense(later)
    steps = cut // model.time_stride
    torch.testing.assert_close(b[:, :steps], a[:, :steps], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(b[:, steps:], a[:, steps:])


def test_eval_outputs_repeat_and_one_prompt_equals_per_sample_prompts(case):
    _, model, x, _ = case
    model.eval()
    prompt = prompt_for(model, 1)
    lengths = torch.tensor([T, 11, 6])
    with torch.no_grad():
        first = model.forward_features(x, lengths, input_prompt=prompt)
        again = model.forward_features(x, lengths, input_prompt=prompt)
        per_sample = model.forward_features(x, lengths, input_prompt=prompt.expand(3, *prompt.shape[1:]))
        dense = model.forward_dense(x, lengths, input_prompt=prompt)
        dense_again = model.forward_dense(x, lengths, input_prompt=prompt)
        plain = model.forward_features(x, lengths)
    assert torch.equal(first, again) and torch.equal(dense, dense_again)
    torch.testing.assert_close(per_sample, first, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(plain, first, atol=1e-4)  # the prompt acts


def test_spec_build_load_round_trip(case):
    spec, model, x, _ = case
    prompt = prompt_for(model, 1)
    original = build_encoder(spec, prompt)
    original.backbone.load_state_dict(model.state_dict())
    original.eval()
    rebuilt_spec = EncoderSpec.from_dict(json.loads(spec.to_json()), "test")
    assert rebuilt_spec == spec
    torch.manual_seed(123)  # other random weights, then the saved ones
    rebuilt = build_encoder(rebuilt_spec, original.input_prompt)
    rebuilt.backbone.load_state_dict(original.backbone.state_dict())
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt.forward_features(x), original.forward_features(x))
        assert torch.equal(rebuilt.forward_dense(x), original.forward_dense(x))


def test_safetensors_export_round_trip(case, tmp_path):
    spec, model, x, _ = case
    encoder = build_encoder(spec, prompt_for(model, 1))
    encoder.backbone.load_state_dict(model.state_dict())
    encoder.eval()
    path = save_encoder(encoder, tmp_path / "enc.safetensors", {"note": "test"})
    loaded, meta = read_encoder(path)
    assert loaded.spec == spec and meta["note"] == "test" and not loaded.training
    lengths = torch.tensor([T, 10, 4])
    with torch.no_grad():
        assert torch.equal(loaded.forward_features(x, lengths), encoder.forward_features(x, lengths))
        assert torch.equal(loaded.forward_dense(x, lengths), encoder.forward_dense(x, lengths))
