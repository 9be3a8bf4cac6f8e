"""The built-in procedural skeleton dataset on the ``ntu25`` layout (the quickstart's and the
tests' default data): trimmed clips of 32 action classes and untrimmed recordings with
action intervals, split by subject (``xsub/train`` / ``xsub/val``).

Clips come from motion primitives on a kinematic body model (per-subject bone lengths,
forward kinematics, planted feet), filmed by a Kinect-like camera with sensor noise and
dropped joints. ``generate`` returns the records, ``synthesize_store`` writes them (centred
and view-aligned) as a store. Module map: ``body`` (skeleton + kinematics), ``primitives``
(envelopes), ``motions`` / ``whole_body`` / ``interactions`` (one maker per class),
``actions`` (the catalogue), ``scene`` (idle motion, camera, noise), ``dataset`` (clips,
recordings, splits, store; its docstring gives the measured difficulty: a linear probe on
raw coordinates gets about 58 %, temporal models 81-90 %).
"""

from pcm3.data.synthetic.actions import CLASS_NAMES
from pcm3.data.synthetic.dataset import SIZES, generate, synthesize_store

__all__ = ["CLASS_NAMES", "SIZES", "generate", "synthesize_store"]
