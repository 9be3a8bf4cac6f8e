"""The library's pre-training entry (``pcm3 pretrain`` and ``pcm3 bench`` call it): resolve the
store, pick the training and online-evaluation splits, hold classes out, build the method and
run the trainer. Checkpoints record the samples pre-training saw
(:mod:`pcm3.data.sample_record`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcm3.data.sample_record import samples_record
from pcm3.data.store import SkeletonStore, open_store
from pcm3.data.union import pretraining_views
from pcm3.distributed import cleanup, init_distributed_from_env
from pcm3.engine.config import PretrainConfig
from pcm3.engine.run_lock import RunFolderLock
from pcm3.engine.runtime import check_device_step, model_step_check, resolve_runtime, write_run_info
from pcm3.engine.seed import seed_everything
from pcm3.engine.trainer import Trainer, write_resolved_config
from pcm3.errors import ConfigError, Pcm3Error
from pcm3.methods import build_method

BUILTIN_DATA = Path("data/builtin")


def resolve_store(data: str) -> SkeletonStore:
    """A store path, or ``synthetic`` / ``builtin`` (generated on first use)."""
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


def pick_splits(store: SkeletonStore, split: str | None, eval_split: str | None
                ) -> tuple[SkeletonStore, tuple[SkeletonStore, SkeletonStore] | None]:
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


def class_indices(store: SkeletonStore, classes: list[int | str]) -> list[int]:
    """Sorted class indices of ``classes``: class names (exact) or indices of ``store``'s classes;
    unknown names and out-of-range indices are errors naming the allowed values."""
    names = list(store.class_names)
    out = set()
    for item in classes:
        if isinstance(item, str) and item in names:
            out.add(names.index(item))
        elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(names):
            out.add(item)
        else:
            raise ConfigError(f"{item!r} is not a class name or an index in 0..{len(names) - 1} of store "
                              f"{store.path}; classes: {names}")
    return sorted(out)


def without_classes(store: SkeletonStore, classes: list[int | str]) -> SkeletonStore:
    """``store`` without the samples of ``classes`` (names or indices): classes held out of
    pre-training for the few-shot task. Unlabelled samples stay."""
    excluded = class_indices(store, list(classes))
    rows = np.flatnonzero(~np.isin(store.labels, excluded))
    if len(rows) == 0:
        raise Pcm3Error(f"excluding classes {excluded} leaves no training samples in {store}")
    name = f"{store.split_name} without classes {excluded}"
    return SkeletonStore(store.path, store.indices[rows], name=name)


def run_pretraining(cfg: PretrainConfig, out: Path, resume: str | Path | None = "auto") -> dict | None:
    """Pre-train ``cfg`` (a ``PretrainConfig``) into the run folder ``out``.

    ``resume``: ``"auto"`` (the folder's latest checkpoint, if any), a checkpoint path, or None
    (start fresh). Returns the trainer's summary on rank 0 (None on other ranks); the final
    checkpoint is ``out / "checkpoints" / "last.pt"``.

    Device, precision and threads are resolved first (``auto`` from the hardware), printed and
    written to ``out / "run_info.json"``; rank 0 holds the run folder's lock for the whole run.
    """
    rank, world, device = init_distributed_from_env()
    runtime = resolve_runtime(cfg.device, cfg.precision, auto_device=device if world > 1 else None)
    lock = RunFolderLock(out).acquire() if rank == 0 else None
    if rank == 0:
        print(f"[pretrain] {runtime.describe()}", flush=True)
    try:
        seed_everything(cfg.seed, deterministic=cfg.deterministic)
        store, train, evaluation = pretraining_views(cfg.data, cfg.split, cfg.eval_split,
                                                     resolve_store, pick_splits)
        held_out: list[str] = []
        if cfg.exclude_classes:
            held_out = [train.class_names[i] for i in class_indices(train, cfg.exclude_classes)]
            train = without_classes(train, cfg.exclude_classes)
        c, m = int(store.x.shape[1]), int(store.x.shape[4])
        method = build_method(cfg, store.layout, c, m)
        runtime = check_device_step(runtime, model_step_check(method, train, runtime.precision))
        device = runtime.device
        method = method.to(device)
        if rank == 0:
            write_resolved_config(cfg, out)
            write_run_info(out, runtime, world_size=world, num_workers=cfg.num_workers)
        trainer = Trainer(cfg, method, train, out, device, rank, world, eval_stores=evaluation,
                          samples=samples_record(train, held_out))
        resumed = resume is not None and trainer.resume(None if resume == "auto" else Path(resume))
        if not resumed and cfg.init is not None:
            trainer.initialize_from(Path(cfg.init))
        summary = trainer.fit()
    finally:
        cleanup()
        if lock is not None:
            lock.release()
    return summary if rank == 0 else None
