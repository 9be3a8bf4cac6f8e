"""Reader ``ntu-raw``: a folder of raw NTU RGB+D 60/120 ``.skeleton`` files -> trimmed samples.

File names are ``SsssCcccPpppRrrrAaaa.skeleton`` (setup, camera, performer, replication,
action). The text format: the frame count; per frame the body count; per body one line of
10 body fields (the first is the body ID), the joint count (25), then 25 lines of 12 joint
fields whose first three are x, y, z in metres. CRLF and LF files read the same.

Bodies are tracked by body ID across frames into ``(B, T, 25, 3)`` (zeros where a body is
absent), and the ``options.max_bodies`` of highest motion energy are kept, giving
``Sample.x (3, T, 25, max_bodies)`` float32 and ``label = action - 1``. Splits follow the
official protocol: ``xsub`` always, ``xview`` for NTU-60, ``xset`` for
NTU-120 (a source with a setup above 17 is NTU-120). Options read: ``missing_list``,
``max_bodies``, ``skip_bad``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcm3.data.formats.base import BadSamples, ReadOptions
from pcm3.data.formats.text_numbers import parse_numeric_text
from pcm3.data.records import Converted, Sample
from pcm3.errors import ConfigError, DataError
from pcm3.layouts import NTU25

NAME_PATTERN = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
JOINTS = 25
BODY_FIELDS = 10
JOINT_FIELDS = 12
NTU60_MAX_SETUP = 17
# NTU-120 cross-subject training performers; NTU-60 uses the first 20 of them
XSUB_TRAIN_SUBJECTS = (
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49,
    50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93,
    94, 95, 97, 98, 100, 103,
)  # fmt: skip
NTU60_XSUB_TRAIN_SUBJECTS = XSUB_TRAIN_SUBJECTS[:20]
XVIEW_TRAIN_CAMERAS = (2, 3)
XVIEW_VAL_CAMERAS = (1,)

# official action names A1..A120 (github.com/shahroudy/NTURGB-D); A1..A60 are NTU-60's
NTU_ACTION_NAMES = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup",
    "throw", "sitting down", "standing up (from sitting position)", "clapping", "reading",
    "writing", "tear up paper", "wear jacket", "take off jacket", "wear a shoe",
    "take off a shoe", "wear on glasses", "take off glasses", "put on a hat/cap",
    "take off a hat/cap", "cheer up", "hand waving", "kicking something",
    "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard", "pointing to something with finger",
    "taking a selfie", "check time (from watch)", "rub two hands together", "nod head/bow",
    "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front (say stop)", "sneeze/cough", "staggering", "falling",
    "touch head (headache)", "touch chest (stomachache/heart pain)", "touch back (backache)",
    "touch neck (neckache)", "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair",
    "thumb up", "thumb down", "make ok sign", "make victory sign", "staple book",
    "counting money", "cutting nails", "cutting paper (using scissors)", "snapping fingers",
    "open bottle", "sniff (smell)", "squat down", "toss a coin", "fold paper",
    "ball up paper", "play magic cube", "apply cream on face", "apply cream on hand back",
    "put on bag", "take off bag", "put something into a bag", "take something out of a bag",
    "open a box", "move heavy objects", "shake fist", "throw up cap/hat",
    "hands up (both hands)", "cross arms", "arm circles", "arm swings", "running on the spot",
    "butt kicks (kick backward)", "cross toe touch", "side kick", "yawn", "stretch oneself",
    "blow nose", "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person's stuff",
    "shoot at other person with a gun", "step on foot", "high-five", "cheers and drink",
    "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear",
    "exchange things with other person",
    "support somebody with one's hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",
)  # fmt: skip


@dataclass(frozen=True)
class NtuName:
    """The fields of a sample name ``SsssCcccPpppRrrrAaaa`` (1-based numbers)."""

    setup: int
    camera: int
    subject: int
    replication: int
    action: int


def parse_name(path: Path) -> NtuName:
    """The fields of ``path``'s ``SsssCcccPpppRrrrAaaa`` name, else a DataError."""
    match = NAME_PATTERN.fullmatch(path.stem)
    if match is None or path.suffix != ".skeleton":
        raise DataError(
            "file name does not match SsssCcccPpppRrrrAaaa.skeleton", path=path, sample=path.stem
        )
    name = NtuName(*(int(g) for g in match.groups()))
    if not 1 <= name.action <= len(NTU_ACTION_NAMES):
        raise DataError(
            f"action A{name.action:03d} outside A001..A{len(NTU_ACTION_NAMES)}",
            path=path,
            sample=path.stem,
        )
    return name


def read_skeleton_file(path: Path) -> np.ndarray:
    """All bodies of one ``.skeleton`` file as ``(B, T, 25, 3)`` float32, bodies in order of
    first appearance, zeros in the frames where a body is absent."""
    text = parse_numeric_text(path)
    n_frames = text.integer(0, "the frame count")
    if n_frames == 0:
        raise DataError("the frame count is 0 (empty sample)", path=path)
    line = 1
    frames: list[int] = []
    info_lines: list[int] = []
    for frame in range(n_frames):  # variable structure: one light step per frame and body
        n_bodies = text.integer(line, f"the body count of frame {frame + 1}")
        line += 1
        for _ in range(n_bodies):
            text.expect_count(line, BODY_FIELDS, f"body info (frame {frame + 1})")
            joints = text.integer(line + 1, f"the joint count (frame {frame + 1})")
            if joints != JOINTS:
                raise DataError(
                    f"joint count {joints}, expected {JOINTS}", path=path, line=line + 2
                )
            frames.append(frame)
            info_lines.append(line)
            line += 2 + JOINTS
            if line - 1 > text.last_line:
                raise DataError(
                    f"file is truncated: it ends before the {JOINTS} joint lines of the body "
                    f"at line {info_lines[-1] + 1} (frame {frame + 1}) are complete",
                    path=path,
                )
    if text.last_line >= line:
        raise DataError(
            f"frame count mismatch: the header announces {n_frames} frames but data continues "
            f"after them",
            path=path,
            line=line + 1,
        )
    if not frames:
        raise DataError(f"no body in any of the {n_frames} frames (empty sample)", path=path)
    joint_lines = np.asarray(info_lines)[:, None] + 2 + np.arange(JOINTS)  # (N, 25)
    text.require_counts(joint_lines, JOINT_FIELDS, "joint")
    xyz_index = text.first[joint_lines][..., None] + np.arange(3)  # (N, 25, 3)
    text.require_finite(xyz_index, "joint coordinates")
    body = _body_index(path, [text.line(i).split(None, 1)[0] for i in info_lines])
    frame = np.asarray(frames)
    slot = body * n_frames + frame
    unique_slots, first = np.unique(slot, return_index=True)
    if unique_slots.size != slot.size:
        repeated = np.setdiff1d(np.arange(slot.size), first)[0]
        raise DataError(
            f"body ID appears twice in frame {frames[repeated] + 1}",
            path=path,
            line=info_lines[repeated] + 1,
        )
    bodies = np.zeros((int(body.max()) + 1, n_frames, JOINTS, 3), dtype=np.float32)
    bodies[body, frame] = text.values[xyz_index]
    return bodies


def _body_index(path: Path, body_ids: list[bytes]) -> np.ndarray:
    """``(N,)`` index of each body ID, numbered in order of first appearance."""
    ids, first, inverse = np.unique(np.array(body_ids), return_index=True, return_inverse=True)
    rank = np.empty(ids.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(ids.size)
    return rank[inverse.ravel()]


def read_sample(path: Path, max_bodies: int) -> tuple[Sample, NtuName]:
    """One sample ``x (3, T, 25, max_bodies)`` float32 with its name fields."""
    from pcm3.data.preprocess import select_bodies  # lazy: preprocess sits downstream of us

    name = parse_name(path)
    kept = select_bodies(read_skeleton_file(path), max_bodies)  # (M, T, 25, 3)
    x = np.ascontiguousarray(np.transpose(kept, (3, 1, 2, 0)), dtype=np.float32)
    return Sample(id=path.stem, x=x, label=name.action - 1), name


def read_missing_lists(paths: tuple[Path, ...]) -> set[str]:
    """Sample names listed in the official missing-skeleton lists (prose lines ignored)."""
    names: set[str] = set()
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise DataError(f"cannot read missing-skeleton list: {exc}", path=path) from exc
        found = re.findall(r"S\d{3}C\d{3}P\d{3}R\d{3}A\d{3}", text)
        if not found:
            raise DataError("no SsssCcccPpppRrrrAaaa sample name in missing list", path=path)
        names.update(found)
    return names


def _skeleton_files(src: Path) -> list[Path]:
    if not src.is_dir():
        raise DataError("expected a folder of NTU .skeleton files", path=src)
    files = sorted(src.rglob("*.skeleton"), key=lambda p: (p.name, str(p)))
    if not files:
        raise DataError("no .skeleton file in this folder (searched recursively)", path=src)
    for a, b in itertools.pairwise(files):
        if a.name == b.name:
            raise DataError(f"sample {a.stem} found twice: {a} and {b}", path=src)
    return files


def build_splits(names: dict[str, NtuName], ntu120: bool) -> dict[str, list[str]]:
    """Official split membership: xsub, then xview (NTU-60) or xset (NTU-120)."""
    subjects = set(XSUB_TRAIN_SUBJECTS if ntu120 else NTU60_XSUB_TRAIN_SUBJECTS)
    splits = {
        "xsub/train": [i for i, n in names.items() if n.subject in subjects],
        "xsub/val": [i for i, n in names.items() if n.subject not in subjects],
    }
    if ntu120:
        splits["xset/train"] = [i for i, n in names.items() if n.setup % 2 == 0]
        splits["xset/val"] = [i for i, n in names.items() if n.setup % 2 == 1]
    else:
        splits["xview/train"] = [i for i, n in names.items() if n.camera in XVIEW_TRAIN_CAMERAS]
        splits["xview/val"] = [i for i, n in names.items() if n.camera in XVIEW_VAL_CAMERAS]
    return splits


def read(src: Path, options: ReadOptions) -> Converted:
    """Read a folder of ``.skeleton`` files (searched recursively) into trimmed samples."""
    if options.max_bodies < 1:
        raise ConfigError(f"max_bodies must be >= 1, got {options.max_bodies}")
    files = _skeleton_files(src)
    lists = options.missing_list
    lists = (lists,) if isinstance(lists, str | Path) else tuple(lists)
    missing = read_missing_lists(lists)
    kept = [f for f in files if f.stem not in missing]
    bad = BadSamples(options.skip_bad)
    samples: list[Sample] = []
    names: dict[str, NtuName] = {}
    for path in kept:
        result = bad.attempt(lambda p=path: read_sample(p, options.max_bodies), path, path.stem)
        if result is not None:
            samples.append(result[0])
            names[result[0].id] = result[1]
    if not samples:
        raise DataError(f"no readable sample ({len(bad.skipped)} skipped)", path=src)
    # variant and class count from every well-named file, read or skipped
    fields = [m.groups() for f in files if (m := NAME_PATTERN.fullmatch(f.stem))]
    ntu120 = max(int(g[0]) for g in fields) > NTU60_MAX_SETUP
    classes = 120 if max(int(g[4]) for g in fields) > 60 else 60
    return Converted(
        layout=NTU25,
        class_names=list(NTU_ACTION_NAMES[:classes]),
        samples=samples,
        splits=build_splits(names, ntu120),
        skipped=bad.skipped,
        source={
            "format": "ntu-raw",
            "path": str(src),
            "variant": "ntu120" if ntu120 else "ntu60",
            "files": len(files),
            "dropped_missing": len(files) - len(kept),
            "missing_lists": [str(p) for p in lists],
        },
    )
