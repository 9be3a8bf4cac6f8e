"""The one pre-training loop for every method.

Single process, or ``torchrun --nproc-per-node N -m pcm3 pretrain ...`` (DDP: gloo on CPU,
NCCL on CUDA). Seeds, AMP, gradient clipping, atomic checkpoints, auto-resume, metrics as
JSON lines + TensorBoard, a progress bar, and an online 1-NN health signal.

Determinism: the batch order depends on ``(seed, epoch)`` and every step's random views are
drawn from a generator seeded with ``(seed, step, rank)``, so a run resumed from a checkpoint
takes exactly the steps an uninterrupted run takes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from pcm3 import __version__
from pcm3.config import to_dict
from pcm3.data.batches import ClipBatches
from pcm3.data.sample_record import RECORD_KEY, check_record, merge_records, samples_record
from pcm3.data.store import SkeletonStore
from pcm3.distributed import all_reduce_max
from pcm3.engine.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from pcm3.engine.config import PretrainConfig
from pcm3.engine.optim import build_optimizer, lr_at, set_lr
from pcm3.engine.precision import autocast, grad_scaler, precision_on
from pcm3.engine.prefetch import prefetched
from pcm3.engine.time_budget import PROBE_STEPS, WARMUP_STEPS, BudgetDecision, epochs_within_budget
from pcm3.errors import Pcm3Error
from pcm3.methods.base import Method
from pcm3.methods.checkpoints import checkpoint_spec, migrate_legacy_state


class TrainingDiverged(Pcm3Error):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def step_generator(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """The generator for one step's random views (a pure function of seed, step and rank)."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + step * 7919 + rank * 104_729) % (2**63 - 1))
    return g


class Trainer:
    """Runs ``method`` on ``store`` as configured; writes everything into ``run_dir``.

    The trainer uses only the contract of :class:`pcm3.methods.base.Method`: ``before_step``,
    ``forward`` (named losses, ``"loss"`` the total), ``after_step``, ``has_unused_parameters``,
    ``encoder_spec`` and ``feature_encoder``.

    ``on_step(step, losses)`` is an optional hook called after each optimiser step (tests use
    it to interrupt a run). ``samples``: the record of the samples pre-training sees
    (:mod:`pcm3.data.sample_record`; default: every sample of ``store``), saved in each checkpoint.
    """

    def __init__(
        self,
        cfg: PretrainConfig,
        method: Method,
        store: SkeletonStore,
        run_dir: Path,
        device: torch.device,
        rank: int = 0,
        world_size: int = 1,
        eval_stores: tuple[SkeletonStore, SkeletonStore] | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
        samples: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.method = method
        self.store = store
        self.run_dir = Path(run_dir)
        self.device = device
        self.rank = rank
        self.world_size = world_size
        self.eval_stores = eval_stores
        self.on_step = on_step
        self.is_main = rank == 0
        self.samples = samples if samples is not None else samples_record(store)
        self.batches = ClipBatches(store, cfg.batch_size, seed=cfg.seed, drop_last=cfg.drop_last,
                                   rank=rank, world_size=world_size)
        if len(self.batches) == 0:
            raise Pcm3Error(
                f"{len(store)} training samples cannot fill one batch of {cfg.batch_size} per "
                f"process ({world_size} processes): lower batch_size"
            )
        self.steps_per_epoch = len(self.batches)
        total = cfg.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        self.budget: BudgetDecision | None = None  # what time_budget_minutes chose, once measured
        self._probe_from: tuple[int, float] | None = None
        self.optimizer = build_optimizer(method.parameters(), cfg.optim)
        self.precision, self.precision_reason = precision_on(cfg.precision, device)
        self.scaler = grad_scaler(device, self.precision)
        self.model: torch.nn.Module = method
        if world_size > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                method, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=method.has_unused_parameters,
            )
        if cfg.compile:
            self.model = torch.compile(self.model)  # type: ignore[assignment]
        self.step = 0
        self.ckpt_dir = self.run_dir / "checkpoints"
        self._writer: Any = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        epoch, batch = divmod(self.step, self.steps_per_epoch)
        return {
            "model": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "queue": {k: v for k, v in self.method.state_dict().items() if "queue" in k},
            "rng": {"torch": torch.get_rng_state()},
            "step": self.step,
            "epoch": epoch,
            "batch_in_epoch": batch,
            "config": to_dict(self.cfg),
            "method": self.cfg.method,
            "pcm3_version": __version__,
            "data_fingerprint": self.store.fingerprint,
            "layout": self.store.layout.to_dict(),
            "encoder_spec": self.method.encoder_spec.to_dict(),
            "time_budget": None if self.budget is None else self.budget.to_dict(),
            RECORD_KEY: self.samples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        self.step = int(state["step"])
        if state.get("time_budget") is not None:
            self._apply_budget(BudgetDecision(**state["time_budget"]))
        if RECORD_KEY in state:  # includes what an initialisation checkpoint saw
            self.samples = check_record(state[RECORD_KEY], "checkpoint")

    def resume(self, path: Path | None = None) -> bool:
        """Load ``path`` or the latest checkpoint of the run; False when there is none."""
        path = path or latest_checkpoint(self.ckpt_dir)
        if path is None:
            return False
        state = load_checkpoint(path, map_location=self.device)
        if state.get("method") != self.cfg.method:
            raise Pcm3Error(f"{path}: checkpoint of method {state.get('method')!r}, "
                            f"config asks for {self.cfg.method!r}")
        self._check_encoder(state, path)
        self.load_state_dict(migrate_legacy_state(state, self.method, self.optimizer))
        self._log_text(f"resumed from {path} at step {self.step}")
        return True

    def initialize_from(self, path: Path) -> None:
        """Start from the model weights of another run's checkpoint (optimizer, step and RNG
        start fresh): PCM3++ post-distillation from a pre-trained PCM3 / PCM3++ checkpoint.
        Only weights this method lacks in the checkpoint (e.g. a new queue) may be missing."""
        state = load_checkpoint(path, map_location=self.device)
        self._check_encoder(state, path)
        try:
            missing, unexpected = self.method.load_state_dict(
                migrate_legacy_state(state, self.method)["model"], strict=False)
        except RuntimeError as exc:  # shape mismatches
            raise Pcm3Error(f"{path}: weights do not fit this model: {exc}") from None
        missing = [k for k in missing if not k.startswith("clip_queue.")]
        if missing or unexpected:
            raise Pcm3Error(f"{path}: weights do not fit this model (missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]})")
        earlier = state.get(RECORD_KEY)
        earlier = None if earlier is None else check_record(earlier, str(path))
        self.samples = merge_records(earlier, self.samples)
        self._log_text(f"initialised from {path} (step {state.get('step')})")

    def _check_encoder(self, state: dict[str, Any], path: Path) -> None:
        """Refuse a checkpoint whose encoder takes other inputs (layout, C, M) than the store's, or
        is another architecture than the config's, before any weight is loaded."""
        spec, ours = checkpoint_spec(state, str(path)), self.method.encoder_spec
        spec.check_input(ours.layout, ours.in_channels, ours.num_persons, f"checkpoint {path}",
                         f"the store {self.store.path}")
        if (spec.backbone, spec.options) != (ours.backbone, ours.options):
            raise Pcm3Error(f"{path}: checkpoint encoder is {spec.backbone} {spec.options}; the config "
                            f"builds {ours.backbone} {ours.options}")

    def save(self) -> None:
        if self.is_main:
            save_checkpoint(self.state_dict(), self.ckpt_dir, self.step, keep=self.cfg.keep_checkpoints)

    # ------------------------------------------------------------------ logging
    def _log_text(self, text: str) -> None:
        if self.is_main:
            with open(self.run_dir / "log.txt", "a") as fh:
                fh.write(text + "\n")

    def _log_metrics(self, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        for key, value in row.items():
            if key not in ("step", "epoch") and isinstance(value, (int, float)):
                self._writer.add_scalar(key, value, row["step"])

    # ------------------------------------------------------------------ loop
    def _train_step(self, x: torch.Tensor, lengths: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        set_lr(self.optimizer, lr_at(self.step, self.steps_per_epoch, self.total_steps, cfg.optim))
        self.method.before_step(self.step, self.total_steps)
        generator = step_generator(cfg.seed, self.step, self.rank, self.device)
        with autocast(self.device, self.precision):
            losses = self.model(x, lengths, generator)
        values = {k: float(v.detach()) for k, v in losses.items()}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            kept = (f"the last good checkpoint is kept in {self.ckpt_dir}" if latest_checkpoint(self.ckpt_dir)
                    else "no checkpoint was written yet (the run diverged before its first one)")
            raise TrainingDiverged(
                f"step {self.step}: loss term {bad[0]!r} is {values[bad[0]]} "
                f"(terms: {', '.join(f'{k}={v:.4g}' for k, v in values.items())}); {kept}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["loss"]).backward()
        if cfg.optim.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), cfg.optim.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        self.method.after_step(self.step)
        return values

    def _apply_budget(self, decision: BudgetDecision) -> None:
        self.budget = decision
        self.total_steps = min(self.total_steps, decision.epochs * self.steps_per_epoch)

    def _measure_budget(self, steps_run: int) -> None:
        """Time the first steps of this process's run, then apply ``time_budget_minutes``."""
        minutes = self.cfg.time_budget_minutes
        if minutes is None or self.budget is not None or steps_run < WARMUP_STEPS:
            return
        if self._probe_from is None:
            self._probe_from = (self.step, time.perf_counter())
            return
        first, tick = self._probe_from
        if self.step - first < PROBE_STEPS:
            return
        seconds = (time.perf_counter() - tick) / (self.step - first)
        if self.world_size > 1:  # every rank must take the same decision: the slowest one's
            seconds = all_reduce_max(seconds, self.device)
        decision = epochs_within_budget(minutes, seconds, self.steps_per_epoch, self.cfg.epochs)
        self._apply_budget(decision)
        self._log_metrics({"step": self.step, "time_budget": decision.to_dict()})
        if self.is_main:
            print(f"[pretrain] {decision.describe()}", flush=True)

    def fit(self) -> dict[str, Any]:
        """Train until ``epochs`` or ``max_steps``; returns the final summary."""
        from tqdm import tqdm

        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.method.train()
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.is_main,
                   desc="pretrain", dynamic_ncols=True, mininterval=1.0)
        tick, seen, steps_run = time.perf_counter(), 0, 0
        started = tick
        last: dict[str, float] = {}
        while self.step < self.total_steps:
            epoch, skip = divmod(self.step, self.steps_per_epoch)
            for batch in prefetched(self.batches.epoch(epoch, skip=skip), cfg.num_workers):
                batch = batch.to(self.device)
                last = self._train_step(batch.x, batch.lengths)
                seen += batch.x.shape[0] * self.world_size
                bar.update(1)
                steps_run += 1
                self._measure_budget(steps_run)
                bar.total = self.total_steps
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    now = time.perf_counter()
                    rate = seen / max(now - tick, 1e-9)
                    tick, seen = now, 0
                    row = {"step": self.step, "epoch": self.step / self.steps_per_epoch, **last,
                           "lr": self.optimizer.param_groups[0]["lr"], "samples_per_s": rate}
                    self._log_metrics(row)
                    bar.set_postfix(loss=f"{last['loss']:.3f}", sps=f"{rate:.0f}")
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
                if self.on_step is not None:
                    self.on_step(self.step, last)
                if self.step >= self.total_steps:
                    break
            end_of_epoch = self.step % self.steps_per_epoch == 0
            if end_of_epoch and not cfg.checkpoint_every:
                self.save()
            done_epochs = self.step // self.steps_per_epoch
            if end_of_epoch and cfg.knn_every and done_epochs % cfg.knn_every == 0:
                self._online_knn()
        bar.close()
        self.save()
        summary = {"step": self.step, "epochs": self.step / self.steps_per_epoch, "final_losses": last,
                   "seconds": round(time.perf_counter() - started, 1), "steps_this_run": steps_run}
        if self.budget is not None:
            summary["time_budget"] = self.budget.to_dict()
        knn = self._online_knn()
        if knn is not None:
            summary["knn_top1"] = knn
        if self.is_main:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        if self._writer is not None:
            self._writer.close()
        return summary

    def _online_knn(self) -> float | None:
        if self.eval_stores is None or not self.is_main:
            return None
        from pcm3.engine.features import extract_features, knn_top1

        gallery, query = self.eval_stores
        encoder = self.method.feature_encoder()
        frames = self.cfg.augment.view_frames
        with autocast(self.device, self.precision):
            fg = extract_features(encoder, gallery, self.device, frames, self.cfg.stream)
            fq = extract_features(encoder, query, self.device, frames, self.cfg.stream)
        self.method.train()
        acc = knn_top1(fg, gallery.labels, fq, query.labels)
        self._log_metrics({"step": self.step, "epoch": self.step / self.steps_per_epoch,
                           "knn_top1": acc})
        return acc


def write_resolved_config(cfg: PretrainConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
