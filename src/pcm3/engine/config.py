"""The pre-training configuration tree (``pcm3 pretrain --config CFG key=value ...``).

Defaults are the paper's NTU settings (batch 128, SGD lr 0.02, 451 epochs, the 3-layer BiGRU of
width 1024; PCM3's MoCo queue 16384 and momentum 0.999 in its own block, ``methods/pcm3_options.py``);
configs in ``configs/`` only state what differs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from pcm3.config import dataclass_from_mapping
from pcm3.engine.config_migration import move_method_settings
from pcm3.errors import ConfigError
from pcm3.models.registry import backbone_options, get_backbone, known_backbones, options_dict


@dataclass
class ModelConfig:
    """Encoder and heads. Widths at paper size; every one configurable.

    ``backbone`` names a registered backbone (``bigru``, ...); its options sit in a block named
    after it (``model: {backbone: bigru, bigru: {hidden_size: 256}}``, ``model.bigru.hidden_size=256``),
    typed and validated by the backbone's own options class (``docs/backbones.md``) and held in
    ``options``. The other fields are the heads, shared by every backbone.
    """

    backbone: str = "bigru"
    options: Any = None  # the backbone's options dataclass; None = its defaults
    projector_hidden: int = 2048
    embed_dim: int = 128
    neck_hidden: int = 512
    decoder_hidden_size: int = 512
    decoder_layers: int = 2
    prompt_length: int = 128  # task prompt length; must be < feature_dim / 2 of the backbone
    input_prompts: bool = True  # per-view prompts, added after the backbone's input normalisation
    task_prompts: bool = True  # contrastive / masked-prediction prompts at a random offset
    prompt_offsets: Literal["sample", "batch"] = "sample"  # official: one offset per use and batch
    separate_view_calls: bool = False  # official: query, mixed, masked views in separate encoder calls

    def __post_init__(self) -> None:
        self.options = backbone_options(self.backbone, self.options, where=f"model.{self.backbone}")

    @classmethod
    def from_config_mapping(cls, data: dict[str, Any], prefix: str) -> ModelConfig:
        """Read ``model`` (see the class docstring); a block of another backbone, or a flat
        backbone option, is refused naming the allowed keys."""
        name = data.get("backbone", "bigru")
        if not isinstance(name, str):
            raise ConfigError(f"{prefix}.backbone: expected a backbone name, got {name!r}")
        others = [k for k in data if k != name and k in known_backbones()]
        if others:
            raise ConfigError(f"{prefix}.{others[0]}: options of backbone {others[0]!r}, but "
                              f"{prefix}.backbone is {name!r}; only a {prefix}.{name} block is allowed")
        shared = [f.name for f in dataclasses.fields(cls) if f.name != "options"]
        allowed = ["backbone", name, *shared[1:]]
        unknown = [k for k in data if k not in allowed]
        if unknown:
            options = [f.name for f in dataclasses.fields(get_backbone(name).options)]
            if unknown[0] in options:
                raise ConfigError(f"{prefix}.{unknown[0]} is an option of backbone {name!r}: write "
                                  f"{prefix}.{name}.{unknown[0]}")
            raise ConfigError(f"unknown config key {prefix}.{unknown[0]!r}; allowed keys in {prefix}: "
                              f"{', '.join(allowed)} (options of backbone {name!r}, in {prefix}.{name}: "
                              f"{', '.join(options)})")
        options = backbone_options(name, data.get(name), where=f"{prefix}.{name}")
        rest = {k: v for k, v in data.items() if k != name}
        return dataclass_from_mapping(cls, {**rest, "options": options}, prefix)

    def to_config_mapping(self) -> dict[str, Any]:
        """The YAML form: the options under the backbone's name, right after ``backbone``."""
        out: dict[str, Any] = {"backbone": self.backbone, self.backbone: options_dict(self.options)}
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                    if f.name not in ("backbone", "options")})
        return out


@dataclass
class AugmentConfig:
    """Views: temporal crop-resize, one spatial augmentation, mixing, body-part mask."""

    view_frames: int = 64
    crop_scale: tuple[float, float] = (0.1, 1.0)
    crop_min_frames: int = 64  # official: a crop never shorter than 64 frames (or the clip)
    shear_magnitude: float = 1.0  # shear off-diagonals U(-m, m); official m = 1
    corruption_prob_query: float = 0.5
    corruption_prob_key: float = 0.5
    mask_ratio: float = 0.6
    mask_segment_frames: int = 8
    mask_all_persons: bool = False  # official masks person 0 only
    shared_randomness: bool = False  # official: one mask / mix draw per batch


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: Literal["step", "cosine", "constant"] = "step"
    milestones: list[int] = field(default_factory=lambda: [351])  # epochs
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    clip_grad_norm: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's (MAMP: 0.9, 0.95)
    min_lr: float = 0.0  # the cosine schedule's floor (MAMP: 5e-4)
    decay_all: bool = True  # false: no weight decay on biases and 1-D weights (norms), as MAE / MAMP


# what ``official: true`` sets (docs/fidelity.md M2, M4, M5, O1)
OFFICIAL_FORWARD = {"model.input_prompts": False, "model.prompt_offsets": "batch",
                    "model.separate_view_calls": True, "augment.shared_randomness": True}
LOSS_TERMS = ("contrast", "mix", "masked", "reconstructed", "kl", "reconstruction", "clip", "clip_kl")
DISTILLATION_TERMS = ("kl", "clip_kl")  # the relational KL of the sequence pairs and of the clip pair


@dataclass
class PretrainConfig:
    """The whole pre-training run. ``method`` names a registered method; its own options sit in a
    top-level block named after it (``method: skeletonclr`` + ``skeletonclr: {queue_size: 32768}``,
    ``skeletonclr.queue_size=32768``), typed and validated by the method's options class and held
    in ``method_options``: PCM3's loss terms and MoCo settings in ``pcm3: {loss: ..., moco: ...}``,
    PCM3++'s also its clip branch in ``pcm3pp: {..., clip: ...}`` (the older top-level ``loss`` /
    ``moco`` / ``clip`` are still read, ``engine/config_migration.py``). Without ``model.backbone``
    the method's default backbone is used.
    """

    method: str = "pcm3"
    method_options: Any = None  # the method's options dataclass; None = its defaults
    stage: Literal["pretrain", "post_distill"] = "pretrain"  # post_distill: PCM3++ KL-only refinement
    init: str | None = None  # checkpoint whose model weights start a fresh run (post-distillation)
    official: bool = False  # the official training function: sets the four switches of OFFICIAL_FORWARD
    # stage=post_distill: the loss terms that keep their weight; every other term is 0 (Eq. 10)
    post_distill_terms: list[str] = field(default_factory=lambda: list(DISTILLATION_TERMS))
    data: str | list[str] = "synthetic"  # store path or catalog name; a list: their union (data/union.py)
    split: str | list[str] | None = None  # training split (a list: one per store); None = */train or all
    eval_split: str | None = None  # labelled split for the online 1-NN health signal
    exclude_classes: list[int | str] = field(default_factory=list)  # held out (few-shot novel classes)
    stream: Literal["joint", "motion", "bone"] = "joint"
    seed: int = 42
    epochs: int = 451
    max_steps: int | None = None
    # wall-clock budget of the pre-training: keep the whole epochs that fit, from the measured
    # step time (engine/time_budget.py); None = run ``epochs``
    time_budget_minutes: float | None = None
    batch_size: int = 128
    drop_last: bool = True
    num_workers: int = 0  # batches read ahead by a background thread while a step runs; 0 = none
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 only where it is native
    compile: bool = False
    deterministic: bool = False
    device: str = "auto"  # auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps
    checkpoint_every: int = 0  # steps; 0 = at the end of every epoch only
    keep_checkpoints: int = 3
    log_every: int = 10  # steps
    knn_every: int = 0  # epochs; 0 = only at the end
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        from pcm3.methods.registry import method_options

        self.method_options = method_options(self.method, self.method_options)

    @staticmethod
    def migrate_mapping(data: dict[str, Any]) -> dict[str, Any]:
        """The older top-level ``loss`` / ``moco`` / ``clip`` moved into the method's block
        (``pcm3.config.load_config`` applies it to the file and after each override)."""
        return move_method_settings(data, final=False)

    @classmethod
    def from_config_mapping(cls, data: dict[str, Any], prefix: str = "") -> PretrainConfig:
        """Read a run config (see the class docstring); a block of another method than ``method``
        is refused, an unknown key is refused naming the allowed ones."""
        from pcm3.methods.registry import get_method, known_methods, method_options

        data = move_method_settings(data)
        name = data.get("method", "pcm3")
        if not isinstance(name, str):
            raise ConfigError(f"method: expected a method name, got {name!r}")
        entry = get_method(name)
        others = [k for k in data if k != name and k in known_methods()]
        if others:
            raise ConfigError(f"{others[0]}: options of method {others[0]!r}, but method is {name!r}; only a "
                              f"{name} block is allowed")
        allowed = [f.name for f in dataclasses.fields(cls) if f.name != "method_options"] + [name]
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")
        options = method_options(name, data.get(name), where=name)
        model = data.get("model")
        if (isinstance(model, dict) and "backbone" not in model) or model is None:
            model = {**(model or {}), "backbone": entry.default_backbone}
        rest = {k: v for k, v in data.items() if k not in (name, "model")}
        return dataclass_from_mapping(cls, {**rest, "model": model, "method_options": options}, prefix)

    def to_config_mapping(self) -> dict[str, Any]:
        """The YAML form: the method's options under its name, right after ``method``."""
        from pcm3.models.registry import options_dict

        out: dict[str, Any] = {"method": self.method, self.method: options_dict(self.method_options)}
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                    if f.name not in ("method", "method_options")})
        return out

    def validate(self) -> None:
        if self.official:  # the official forward pass (docs/fidelity.md); wins over those keys
            for key, value in OFFICIAL_FORWARD.items():
                section, name = key.split(".")
                setattr(getattr(self, section), name, value)
        from pcm3.methods.registry import get_method

        get_method(self.method).check_backbone(self.model.backbone)
        positive = {"epochs": self.epochs, "batch_size": self.batch_size,
                    "augment.view_frames": self.augment.view_frames}
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be 0 (no prefetch) or more, got {self.num_workers}")
        if self.time_budget_minutes is not None and not self.time_budget_minutes > 0:
            raise ConfigError(f"time_budget_minutes must be positive or null, got {self.time_budget_minutes}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {self.max_steps}")
        lo, hi = self.augment.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ConfigError(f"augment.crop_scale must satisfy 0 < lo <= hi <= 1, got {[lo, hi]}")
        clip = getattr(self.method_options, "clip", None)  # PCM3++'s clip branch
        if clip is not None and not 1 <= clip.min_frames <= clip.max_frames <= self.augment.view_frames:
            raise ConfigError(f"{self.method}.clip: need 1 <= min_frames <= max_frames <= "
                              f"augment.view_frames, got {clip.min_frames}, {clip.max_frames}, "
                              f"{self.augment.view_frames}")
        if isinstance(self.data, list) and self.exclude_classes:
            raise ConfigError("exclude_classes needs one store: the class indices of a union of stores "
                              f"({self.data}) are per store")
        if self.stage == "post_distill":
            self._validate_post_distill()
        if self.model.task_prompts and self.model.prompt_length < 1:
            raise ConfigError(f"model.prompt_length must be at least 1, got {self.model.prompt_length}")

    def _validate_post_distill(self) -> None:
        """PCM3++'s post-distillation (Eq. 10) needs its method, a model to refine, and a KL term
        to train; anything else would silently train on other terms or on nothing."""
        if self.method != "pcm3pp":
            raise ConfigError(f"stage=post_distill is PCM3++'s refinement (method=pcm3pp); method="
                              f"{self.method} has no post-distillation and would silently run its ordinary "
                              "pre-training")
        if self.init is None:
            raise ConfigError("stage=post_distill needs init=CHECKPOINT (the pre-trained model to refine)")
        unknown = [t for t in self.post_distill_terms if t not in LOSS_TERMS]
        if unknown:
            raise ConfigError(f"post_distill_terms: unknown loss terms {unknown}; terms: "
                              f"{', '.join(LOSS_TERMS)}")
        kept = [t for t in self.post_distill_terms if t in DISTILLATION_TERMS]
        kl = self.method_options.loss.kl
        if self.stream != "joint" or kl == 0 or not kept:
            why = (f"stream={self.stream} has no KL term (the official motion and bone streams add none)"
                   if self.stream != "joint" else f"{self.method}.loss.kl is 0" if kl == 0
                   else f"post_distill_terms {self.post_distill_terms} keeps neither kl nor clip_kl")
            others = [t for t in self.post_distill_terms if t not in DISTILLATION_TERMS]
            trains = f"only {', '.join(others)}" if others else "nothing"
            raise ConfigError(f"stage=post_distill trains the relational distillation (KL) terms alone, but "
                              f"{why}: it would train on {trains}; post-distill the joint stream with "
                              f"{self.method}.loss.kl > 0")
