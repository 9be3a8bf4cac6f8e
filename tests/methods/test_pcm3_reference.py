"""PCM3 and PCM3++ on the method base give the losses and gradients of the implementation before
the move, frozen in ``reference/pcm3_reference.pt`` by ``reference/make_pcm3_reference.py``
(run on that implementation): two steps, every loss term, float64."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .reference.make_pcm3_reference import CASES, STEPS, run

REFERENCE = Path(__file__).parent / "reference" / "pcm3_reference.pt"


@pytest.mark.parametrize("case", list(CASES))
def test_losses_and_gradients_unchanged(case):
    expected = torch.load(REFERENCE, weights_only=True)[case]
    got = run(CASES[case])
    for step in range(STEPS):
        for kind in ("losses", "grads"):
            want, have = expected[f"{kind}{step}"], got[f"{kind}{step}"]
            assert set(have) == set(want), (step, kind, set(have) ^ set(want))
            for name, value in want.items():
                torch.testing.assert_close(have[name], value, rtol=1e-9, atol=1e-12,
                                           msg=f"{case} {kind}{step} {name}")
