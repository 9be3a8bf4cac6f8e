"""The action catalogue of the built-in dataset: 32 classes built from motion primitives.

It deliberately holds confusable classes: left / right versions, raise vs wave (same arm
posture, one oscillates), clap vs rub hands, nod vs shake head, reach vs punch vs point,
touch head vs salute, squat vs pick up vs bow, time reversals (sit down / stand up, pick up /
put down), push vs handshake vs high five.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcm3.data.synthetic import interactions as two
from pcm3.data.synthetic import motions as arms
from pcm3.data.synthetic import whole_body as whole
from pcm3.data.synthetic.body import mirror
from pcm3.data.synthetic.primitives import Maker, Pose


def _mirrored(make: Maker) -> Maker:
    def mirrored_make(
        u: np.ndarray, rng: np.random.Generator, amp: float
    ) -> tuple[Pose, Pose | None]:
        pose, partner = make(u, rng, amp)
        return mirror(pose), partner

    return mirrored_make


@dataclass(frozen=True)
class Action:
    """One class: its maker and its typical duration (frames at 30 fps).

    ``distance``: the partner's feet from the actor's (m), for interactions only;
    ``posture``: the posture before and after (``stand`` / ``sit``);
    ``handed``: one-handed, written for the right hand (left-handers mirror it);
    ``seated_ok``: an upper-body action that people also do sitting down.
    """

    name: str
    make: Maker
    duration: tuple[int, int]
    distance: tuple[float, float] | None = None
    posture: tuple[str, str] = ("stand", "stand")
    handed: bool = False
    seated_ok: bool = False

    @property
    def two_person(self) -> bool:
        return self.distance is not None


ACTIONS: tuple[Action, ...] = (
    Action("raise left arm", arms.raise_arm, (50, 100), seated_ok=True),
    Action("raise right arm", _mirrored(arms.raise_arm), (50, 100), seated_ok=True),
    Action("raise both arms", arms.raise_both, (50, 100), seated_ok=True),
    Action("wave left hand", arms.wave, (50, 110), seated_ok=True),
    Action("wave right hand", _mirrored(arms.wave), (50, 110), seated_ok=True),
    Action("wave both hands", arms.wave_both, (50, 110), seated_ok=True),
    Action("nod", arms.nod, (40, 90), seated_ok=True),
    Action("shake head", arms.shake_head, (40, 90), seated_ok=True),
    Action("reach forward", arms.reach_forward, (60, 115), handed=True, seated_ok=True),
    Action("punch", arms.punch, (35, 75), handed=True),
    Action("salute", arms.salute, (40, 85), handed=True, seated_ok=True),
    Action("stretch", arms.stretch, (70, 120), seated_ok=True),
    Action("kick left", whole.kick, (35, 75)),
    Action("kick right", _mirrored(whole.kick), (35, 75)),
    Action("bow", whole.bow, (45, 95)),
    Action("squat", whole.squat, (50, 100)),
    Action("pick up", whole.pick_up, (60, 115), handed=True),
    Action("put down", whole.put_down, (60, 115), handed=True),
    Action("jump", whole.jump, (50, 95)),
    Action("turn around", whole.turn_around, (55, 110)),
    Action("walk in place", whole.walk_in_place, (55, 115)),
    Action("sit down", whole.sit_down, (55, 110), posture=("stand", "sit")),
    Action("stand up", whole.stand_up, (55, 110), posture=("sit", "stand")),
    Action("clap", arms.clap, (40, 90), seated_ok=True),
    Action("rub hands", arms.rub_hands, (40, 90), seated_ok=True),
    Action("touch head", arms.touch_head, (45, 95), handed=True, seated_ok=True),
    Action("throw", arms.throw, (35, 75), handed=True),
    Action("handshake", two.handshake, (50, 110), distance=(0.85, 1.05)),
    Action("high five", two.high_five, (35, 75), distance=(0.8, 1.0)),
    Action("push", two.push, (40, 85), distance=(0.65, 0.85)),
    Action("hug", two.hug, (55, 115), distance=(0.45, 0.6)),
    Action("point at other", two.point_at_other, (50, 100), distance=(1.2, 2.0), handed=True),
)
CLASS_NAMES = [a.name for a in ACTIONS]
