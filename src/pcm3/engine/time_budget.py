"""A wall-clock budget for pre-training: the whole epochs that fit, from measured step times.

The same config runs 160 epochs in 4 minutes on a CPU with native bf16 and needs three times
longer on an AVX2-only one. With ``time_budget_minutes`` set, the trainer times a few steps at
the start of the run and then keeps ``epochs`` or the largest whole number of epochs whose
predicted time fits the budget, whichever is smaller. The decision is taken inside the
learning-rate warm-up (a schedule with warm-up is identical to a run configured with the chosen
epochs from the start), written to the checkpoints (a resumed run keeps it) and reported in the
run's summary and metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WARMUP_STEPS = 2  # first steps not timed: allocation, kernel selection
PROBE_STEPS = 8  # steps timed after them


@dataclass(frozen=True)
class BudgetDecision:
    """What the budget chose: ``epochs`` of ``configured_epochs`` at ``step_seconds`` per step."""

    minutes: float
    step_seconds: float
    steps_per_epoch: int
    configured_epochs: int
    epochs: int

    def describe(self) -> str:
        predicted = self.epochs * self.steps_per_epoch * self.step_seconds / 60
        cut = "" if self.epochs == self.configured_epochs else " (shortened to fit)"
        return (f"time budget {self.minutes:g} min: {self.step_seconds:.3f} s per step measured -> "
                f"{self.epochs} of {self.configured_epochs} epochs{cut}, about {predicted:.1f} min")

    def to_dict(self) -> dict[str, float | int]:
        return {"minutes": self.minutes, "step_seconds": self.step_seconds,
                "steps_per_epoch": self.steps_per_epoch, "configured_epochs": self.configured_epochs,
                "epochs": self.epochs}


def epochs_within_budget(minutes: float, step_seconds: float, steps_per_epoch: int,
                         configured_epochs: int) -> BudgetDecision:
    """The largest whole number of epochs in ``1..configured_epochs`` whose steps fit ``minutes``
    at ``step_seconds`` each (at least one epoch, even when one alone exceeds the budget)."""
    per_epoch = max(step_seconds, 1e-9) * steps_per_epoch
    fit = math.floor(minutes * 60 / per_epoch)
    epochs = max(1, min(configured_epochs, fit))
    return BudgetDecision(minutes, step_seconds, steps_per_epoch, configured_epochs, epochs)


def probe_window(total_steps: int) -> tuple[int, int] | None:
    """``(first, last)`` steps between which the probe times (step counts after the step), or None
    when the run is too short to need a decision."""
    last = WARMUP_STEPS + PROBE_STEPS
    return (WARMUP_STEPS, last) if total_steps > last else None
