"""Where the real-data tests find NTU RGB+D, PKU-MMD and NW-UCLA samples.

``PCM3_DATA`` names the folder (holding ``ntu_rgbd_samples/``, ``pku_mmd_part1/``,
``nw_ucla/``); without it, ``../shared/data`` beside the checkout. When the data are absent a
real-data test is skipped with the reason, except under CI (``CI`` set), where it fails: CI
never skips them silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT = CHECKOUT.parent / "shared" / "data"


def real_data_root() -> Path:
    """``$PCM3_DATA``, or ``../shared/data`` relative to the checkout."""
    value = os.environ.get("PCM3_DATA", "").strip()
    return Path(value).expanduser() if value else DEFAULT


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def real_data(*parts: str) -> Path:
    """The path ``parts`` under the real-data folder; skips the test (fails it under CI) when it
    does not exist."""
    root = real_data_root()
    path = root.joinpath(*parts)
    if path.exists():
        return path
    where = (f"PCM3_DATA={os.environ['PCM3_DATA']}" if os.environ.get("PCM3_DATA", "").strip()
             else "PCM3_DATA is not set; the default is ../shared/data beside the checkout")
    message = (f"real test data not found: {path} ({where}); README 'Data sets and licences' says "
               "how to get them")
    if in_ci():
        pytest.fail(message + "; CI is set, so real-data tests may not be skipped")
    pytest.skip(message)


def require_video_extra() -> None:
    """Skip the test, saying why, when the ``video`` extra is missing (fail it under CI, which must
    run the video tests)."""
    try:
        import imageio_ffmpeg  # noqa: F401
        import mediapipe  # noqa: F401
        import skimage  # noqa: F401
    except ImportError as exc:
        reason = (f"the video extra is missing ({exc}): pip install 'pcm3[video]' (mediapipe 0.10.14, "
                  "whose wheels stop at Python 3.12; scripts/bootstrap.sh leaves the extra out where "
                  "pip finds no wheel)")
        if in_ci():
            pytest.fail(f"CI must run the video tests: {reason}")
        pytest.skip(reason)
