"""Transfer: an encoder pre-trained on store A, evaluated on store B (survey §4.5; CMD's
transfer script).

``target`` is store B's path (``ctx.store_path`` is not read). ``protocol: finetune`` (CMD's
transfer script: the semi-supervised script with ratio 1.0, i.e. full fine-tuning on B's
training split, the default) runs :func:`finetune_encoder` with the ``finetune`` settings;
``protocol: linear`` runs the ``linear`` task on B with the ``linear`` overrides. The splits
are B's (``train_split`` / ``test_split`` here, not inside ``finetune`` / ``linear``). B must
have the encoder's layout and input shape. Metrics: ``top1``, ``top5``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from pcm3.config import from_dict
from pcm3.data.store import SkeletonStore
from pcm3.errors import ConfigError, DataError
from pcm3.tasks.base import TaskContext, check_compatible, get_task, register_task
from pcm3.tasks.encoders import LoadedEncoder
from pcm3.tasks.features import open_trimmed, split_pair
from pcm3.tasks.finetune import FinetuneConfig, finetune_encoder


@dataclass
class TransferConfig:
    """``target``: store B (required). ``linear``: overrides of the linear task's config."""

    target: str = ""
    protocol: Literal["linear", "finetune"] = "finetune"
    train_split: str | None = None
    test_split: str | None = None
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    linear: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        sections = (("finetune", vars(self.finetune)), ("linear", self.linear))
        nested = [f"{name}.{key}" for name, values in sections for key in ("train_split", "test_split")
                  if values.get(key) is not None]
        if nested:
            raise ConfigError(f"transfer: set train_split / test_split at the top level, not {nested[0]}")


def check_input_shape(loaded: LoadedEncoder, store: SkeletonStore) -> None:
    """Refuse a store whose layout, channels or persons the encoder cannot read (names both)."""
    check_compatible(loaded, store)
    _, c, _, v, m = store.x.shape
    probe = torch.zeros(2, c, loaded.view_frames, v, m)
    was_training = loaded.encoder.training
    loaded.encoder.eval()
    try:
        with torch.no_grad():
            state = [*loaded.encoder.parameters(), *loaded.encoder.buffers()]
            device = state[0].device if state else probe.device
            width = loaded.encoder.forward_features(probe.to(device)).shape[-1]
    except (RuntimeError, ValueError, ConfigError) as exc:
        raise DataError(f"the encoder ({loaded.source}) cannot read this store's clips "
                        f"(C={c}, V={v}, M={m}): {exc}", path=store.path) from exc
    finally:
        loaded.encoder.train(was_training)
    if width != loaded.feature_dim:  # e.g. the raw encoder flattens whatever it gets
        raise DataError(f"the encoder ({loaded.source}) gives {width} features on this store's clips "
                        f"(C={c}, V={v}, M={m}) instead of its {loaded.feature_dim}", path=store.path)


@register_task("transfer", TransferConfig, "pre-trained on one store, fine-tuned or probed on another")
def run(ctx: TaskContext, cfg: TransferConfig) -> dict[str, float]:
    if not cfg.target:
        raise ConfigError("transfer: set target=<path of the store to transfer to>")
    store = open_trimmed(cfg.target, "transfer")
    check_input_shape(ctx.encoder, store)
    if cfg.protocol == "linear":
        spec = get_task("linear")
        linear_cfg = from_dict(spec.config, {**cfg.linear, "train_split": cfg.train_split,
                                             "test_split": cfg.test_split})
        target_ctx = TaskContext(ctx.encoder, store.path, ctx.device, ctx.seed, ctx.out_dir)
        return {k: float(v) for k, v in spec.run(target_ctx, linear_cfg).items()}
    train, test = split_pair(store, cfg.train_split, cfg.test_split)
    return finetune_encoder(ctx.encoder, train, test, cfg.finetune, ctx.seed, ctx.device)
