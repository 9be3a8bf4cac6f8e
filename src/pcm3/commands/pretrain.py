"""``pcm3 pretrain`` and ``pcm3 export``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from pcm3.errors import Pcm3Error

BUILTIN_DATA = Path("data/builtin")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pre-training (PCM3, ...)")
    p.add_argument("--config", type=Path, help="YAML config (see configs/)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--resume", nargs="?", const="auto", default="auto", metavar="CKPT",
                   help="resume from CKPT (default: the run folder's latest checkpoint, if any)")
    p.add_argument("--fresh", action="store_true", help="ignore existing checkpoints in the run folder")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.01")
    p.set_defaults(func=pretrain)

    p = sub.add_parser("export", help="write a checkpoint's encoder as safetensors + its config")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True, help="e.g. encoder.safetensors")
    p.set_defaults(func=export)


def resolve_store(data: str):  # -> SkeletonStore
    """A store path, or ``synthetic`` / ``builtin`` (generated on first use)."""
    from pcm3.data.store import SkeletonStore, open_store

    if data in ("synthetic", "builtin"):
        if not (BUILTIN_DATA / "meta.json").exists():
            from pcm3.data.synthetic import synthesize_store

            print(f"generating the built-in dataset at {BUILTIN_DATA} ...")
            synthesize_store(BUILTIN_DATA)
        data = str(BUILTIN_DATA)
    store = open_store(data)
    if not isinstance(store, SkeletonStore):
        raise Pcm3Error(f"{data}: pre-training needs trimmed clips; this is an untrimmed store")
    return store


def pick_splits(store, split: str | None, eval_split: str | None):
    """The training view of ``store`` and, when labels allow, (gallery, query) for online 1-NN."""
    names = store.split_names
    if split is None:
        split = next((s for s in names if s == "train" or s.endswith("/train")), None)
    train = store.split(split) if split else store
    if eval_split is None and split:
        prefix = split[: -len("train")]
        eval_split = next((prefix + s for s in ("val", "test") if prefix + s in names), None)
    evaluation = None
    if eval_split:
        query = store.split(eval_split)
        if (train.labels >= 0).any() and (query.labels >= 0).all():
            evaluation = (train, query)
    return train, evaluation


def without_classes(store, classes: list[int | str]):  # -> SkeletonStore
    """``store`` without the samples of ``classes`` (names or indices): classes held out of
    pre-training for the few-shot task. Unlabelled samples stay."""
    import numpy as np

    from pcm3.tasks.fewshot import novel_class_indices
    from pcm3.tasks.subsets import subset_store

    excluded = novel_class_indices(store, list(classes))
    rows = np.flatnonzero(~np.isin(store.labels, excluded))
    if len(rows) == 0:
        raise Pcm3Error(f"excluding classes {excluded} leaves no training samples in {store}")
    return subset_store(store, rows, name=f"{store.split_name} without classes {excluded}")


def pretrain(args: argparse.Namespace) -> int:
    from pcm3.config import load_config
    from pcm3.engine.config import PretrainConfig

    cfg = load_config(PretrainConfig, args.config, args.overrides)
    resume = None if args.fresh else ("auto" if args.resume == "auto" else Path(args.resume))
    summary = run_pretraining(cfg, args.out, resume=resume)
    if summary is not None:
        print(json.dumps(summary))
    return 0


def run_pretraining(cfg, out: Path, resume: str | Path | None = "auto") -> dict | None:
    """Pre-train ``cfg`` (a ``PretrainConfig``) into the run folder ``out``.

    ``resume``: ``"auto"`` (the folder's latest checkpoint, if any), a checkpoint path, or None
    (start fresh). Returns the trainer's summary on rank 0 (None on other ranks); the final
    checkpoint is ``out / "checkpoints" / "last.pt"``.
    """
    from pcm3.data.union import pretraining_views
    from pcm3.distributed import cleanup, init_distributed_from_env
    from pcm3.engine.seed import seed_everything
    from pcm3.engine.trainer import Trainer, write_resolved_config
    from pcm3.methods import build_method

    rank, world, device = init_distributed_from_env()
    if cfg.device != "auto":
        device = torch.device(cfg.device)
    try:
        seed_everything(cfg.seed, deterministic=cfg.deterministic)
        store, train, evaluation = pretraining_views(cfg.data, cfg.split, cfg.eval_split,
                                                     resolve_store, pick_splits)
        if cfg.exclude_classes:
            train = without_classes(train, cfg.exclude_classes)
        c, m = store.x.shape[1], store.x.shape[4]
        method = build_method(cfg, store.layout, c, m).to(device)
        if rank == 0:
            write_resolved_config(cfg, out)
        trainer = Trainer(cfg, method, train, out, device, rank, world, eval_stores=evaluation)
        resumed = resume is not None and trainer.resume(None if resume == "auto" else Path(resume))
        if not resumed and cfg.init is not None:
            trainer.initialize_from(Path(cfg.init))
        summary = trainer.fit()
    finally:
        cleanup()
    return summary if rank == 0 else None


def export(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from pcm3.config import from_dict
    from pcm3.engine.checkpoint import load_checkpoint
    from pcm3.engine.config import PretrainConfig

    state = load_checkpoint(args.checkpoint)
    cfg = from_dict(PretrainConfig, state["config"])
    model = state["model"]
    tensors = {k[len("encoder."):]: v.contiguous() for k, v in model.items() if k.startswith("encoder.")}
    prompt = model.get("input_prompts.prompts.base")
    if prompt is not None and cfg.stream == "joint" and cfg.model.input_prompts:
        tensors["input_prompt"] = prompt.contiguous()
    if not tensors:
        raise Pcm3Error(f"{args.checkpoint}: no encoder weights found")
    meta = {"pcm3_config": json.dumps(state["config"]), "layout": json.dumps(state.get("layout")),
            "data_fingerprint": str(state.get("data_fingerprint")), "step": str(state.get("step"))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata=meta)
    print(f"wrote {args.out} ({len(tensors)} tensors)")
    return 0
