"""Joint mappings between layouts: skeletons of one layout (MediaPipe's 33 landmarks, COCO's 17
keypoints) put into another (NTU's 25 or Kinect v1's 20 joints), so that an encoder trained on
one layout can read data of the other.

A mapping is a ``(V_target, V_source)`` weight matrix built from the name tables of
:data:`pcm3.layouts.JOINT_MAPPINGS`. Every target joint is

- ``direct``: one source joint, copied;
- ``synthesised``: a weighted mean of several source joints (e.g. NTU's spine base is the
  midpoint of the hips);
- ``absent``: the source has nothing there (COCO has no hands or feet). With
  ``absent="nearest"`` (the default) it takes the value of the nearest mapped target joint
  along the target skeleton's bones (fewest bones; ties: the lower joint index), so a COCO
  wrist stands in for the NTU hand; with ``absent="zero"`` it stays all-zero, which the store
  reads as a missing joint.

Missing source joints (all coordinates exactly zero) stay missing: a target joint built from a
missing source joint is all-zero, and so is an absent joint filled from it. The tables are
listed in ``docs/layouts.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pcm3.errors import ConfigError
from pcm3.layouts import JOINT_MAPPINGS, Layout, get_layout

ABSENT_FILLS = ("nearest", "zero")
JOINT_KINDS = ("direct", "synthesised", "absent")


@dataclass(frozen=True, eq=False)
class LayoutMapping:
    """A mapping from ``source`` to ``target``; ``weights`` ``(V_target, V_source)``, the kind of
    each target joint, and for absent joints the target joint they are filled from (or None)."""

    source: Layout
    target: Layout
    weights: np.ndarray
    kinds: tuple[str, ...]
    fill_from: tuple[int | None, ...]
    absent: str

    def apply(self, x: np.ndarray, joint_axis: int = -2, channel_axis: int = -1) -> np.ndarray:
        """``x`` with its ``joint_axis`` of ``V_source`` joints replaced by ``V_target`` joints.

        ``channel_axis`` holds the coordinates (a joint is missing when all are zero). The
        default axes fit ``(..., V, C)``; a store batch ``(N, C, T, V, M)`` uses ``joint_axis=3,
        channel_axis=1``. Returns float32.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim < 2 or x.shape[joint_axis] != self.source.num_joints:
            shape = x.shape if x.ndim else "a scalar"
            raise ConfigError(f"mapping {self.source.name} -> {self.target.name}: expected "
                              f"{self.source.num_joints} joints on axis {joint_axis}, got shape {shape}")
        a = np.moveaxis(x, (channel_axis, joint_axis), (-2, -1))  # (..., C, V_source)
        missing = ~(a != 0).any(axis=-2)  # (..., V_source)
        uses = (self.weights != 0).astype(np.float32)  # (V_target, V_source)
        out = a @ self.weights.T.astype(np.float32)  # (..., C, V_target)
        lost = (missing.astype(np.float32) @ uses.T) > 0  # (..., V_target)
        out = np.where(lost[..., None, :], np.float32(0), out)
        for j, source in enumerate(self.fill_from):
            if source is not None:
                out[..., j] = out[..., source]
        return np.ascontiguousarray(np.moveaxis(out, (-2, -1), (channel_axis, joint_axis)))

    def describe(self) -> list[dict[str, Any]]:
        """One row per target joint: its name, kind and sources (or the joint it is filled from)."""
        rows = []
        for j, name in enumerate(self.target.joint_names):
            used = np.flatnonzero(self.weights[j])
            sources = {self.source.joint_names[i]: round(float(self.weights[j, i]), 4) for i in used}
            fill = self.fill_from[j]
            rows.append({"joint": name, "kind": self.kinds[j], "sources": sources,
                         "filled_from": None if fill is None else self.target.joint_names[fill]})
        return rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly record of the mapping (stored in the metadata of mapped data)."""
        return {"source": self.source.name, "target": self.target.name, "absent": self.absent,
                "joints": self.describe()}


def _source_weights(sources: Any, source: Layout, where: str) -> dict[int, float]:
    if isinstance(sources, dict):
        named = {str(k): float(v) for k, v in sources.items()}
    else:
        named = {}
        for name in sources:
            named[name] = named.get(name, 0.0) + 1.0 / len(sources)
    unknown = [n for n in named if n not in source.joint_names]
    if unknown or not named:
        raise ConfigError(f"{where}: unknown source joints {unknown} (joints: {list(source.joint_names)})")
    if abs(sum(named.values()) - 1.0) > 1e-6 or min(named.values()) <= 0:
        raise ConfigError(f"{where}: weights {named} must be positive and sum to 1")
    return {source.joint_names.index(n): w for n, w in named.items()}


def _nearest_mapped(target: Layout, joint: int, mapped: np.ndarray) -> int | None:
    """The mapped target joint fewest bones away from ``joint`` (ties: lower index)."""
    neighbours: list[set[int]] = [set() for _ in range(target.num_joints)]
    for child, parent in target.bones:
        neighbours[child].add(parent)
        neighbours[parent].add(child)
    seen, frontier = {joint}, {joint}
    while frontier:
        frontier = {n for j in frontier for n in neighbours[j]} - seen
        hits = sorted(j for j in frontier if mapped[j])
        if hits:
            return hits[0]
        seen |= frontier
    return None


def mapping_from_table(source: Layout, target: Layout, table: dict[str, Any],
                       absent: str = "nearest") -> LayoutMapping:
    """A mapping from a name table ``{target joint: source joints}`` (the form of
    :data:`pcm3.layouts.JOINT_MAPPINGS`: a tuple = their mean, a dict = weights summing to 1)."""
    if absent not in ABSENT_FILLS:
        raise ConfigError(f"absent joints: unknown fill {absent!r}; allowed: {list(ABSENT_FILLS)}")
    where = f"mapping {source.name} -> {target.name}"
    unknown = [name for name in table if name not in target.joint_names]
    if unknown:
        raise ConfigError(f"{where}: unknown target joints {unknown} (joints: {list(target.joint_names)})")
    weights = np.zeros((target.num_joints, source.num_joints))
    for name, sources in table.items():
        for i, w in _source_weights(sources, source, f"{where}, joint {name!r}").items():
            weights[target.joint_names.index(name), i] = w
    mapped = (weights != 0).any(axis=1)
    if not mapped.any():
        raise ConfigError(f"{where}: no target joint is mapped")
    kinds = tuple("absent" if not m else "direct" if (row != 0).sum() == 1 else "synthesised"
                  for m, row in zip(mapped, weights, strict=True))
    fill = tuple(_nearest_mapped(target, j, mapped) if absent == "nearest" and not mapped[j] else None
                 for j in range(target.num_joints))
    return LayoutMapping(source, target, weights, kinds, fill, absent)


def layout_mapping(source: Layout | str, target: Layout | str, absent: str = "nearest") -> LayoutMapping:
    """The built-in mapping from ``source`` to ``target`` (identity when they are the same layout)."""
    source, target = get_layout(source), get_layout(target)
    if source.to_dict() == target.to_dict():
        return mapping_from_table(source, target, {n: (n,) for n in source.joint_names}, absent)
    key = (source.name, target.name)
    if key not in JOINT_MAPPINGS:
        known = ", ".join(f"{s} -> {t}" for s, t in JOINT_MAPPINGS)
        raise ConfigError(f"no joint mapping from layout {source.name!r} to {target.name!r}; "
                          f"mappings: {known}")
    return mapping_from_table(source, target, JOINT_MAPPINGS[key], absent)


def map_joints(x: np.ndarray, source: Layout | str, target: Layout | str, joint_axis: int = -2,
               channel_axis: int = -1, absent: str = "nearest") -> np.ndarray:
    """``x`` mapped from layout ``source`` to ``target`` (see :meth:`LayoutMapping.apply`)."""
    return layout_mapping(source, target, absent).apply(x, joint_axis, channel_axis)


def _sources_text(row: dict[str, Any]) -> str:
    if row["kind"] == "absent":
        return f"absent: copies `{row['filled_from']}`" if row["filled_from"] else "absent: zero"
    sources = row["sources"]
    if len(sources) == 1:
        return f"`{next(iter(sources))}`"
    if len(set(sources.values())) == 1:
        return "mean of " + ", ".join(f"`{name}`" for name in sources)
    return " + ".join(f"{weight:g} `{name}`" for name, weight in sources.items())


def markdown_table(sources: list[str], target: str) -> str:
    """The Markdown table of the mappings from each of ``sources`` onto ``target`` (one row per
    target joint), as printed in ``docs/layouts.md``."""
    described = [layout_mapping(source, target).describe() for source in sources]
    lines = [f"| {target} joint | " + " | ".join(f"from {s}" for s in sources) + " |",
             "|---|" + "---|" * len(sources)]
    for rows in zip(*described, strict=True):
        lines.append(f"| `{rows[0]['joint']}` | " + " | ".join(_sources_text(r) for r in rows) + " |")
    return "\n".join(lines)
