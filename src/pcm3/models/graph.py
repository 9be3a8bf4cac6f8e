"""The skeleton graph of a layout and ST-GCN's spatial-partition adjacency.

The graph's edges are the layout's bones (``(child, parent)`` pairs) plus a self-loop on every
joint. Joints joined by bones form connected components; every component of a layout's
``parents`` holds exactly one root (a joint that is its own parent) or exactly one cycle of
parents. Each component gets a centre joint: its root (``center="root"``), or, with
``center="layout"``, the layout's ``center`` joint for the component that holds it (roots for the
others). A component whose parents form a cycle has no root and is refused.

Spatial partition (ST-GCN, Yan et al. 2018, "spatial configuration"), for a target joint ``i``
and a neighbour or itself ``j``, with ``d`` the hop distance to the centre of their component:

- partition 0: ``j == i`` (the self-loop);
- partition 1: ``j`` a neighbour with ``d[j] >= d[i]`` (as far from the centre as ``i``, or farther);
- partition 2: ``j`` a neighbour with ``d[j] < d[i]`` (closer to the centre).

``partition="spatial_one_hop"`` computes what the released ST-GCN code (and SkeletonCLR, AimCLR,
CrosSCLR, which reuse it) computes: its hop distances are cut at one hop, so every joint farther
than one hop from the centre counts as equally far, and for those joints every neighbour falls
into partition 1 (partition 2 is empty away from the centre). ``"spatial"`` is the partition the
ST-GCN paper describes, on exact hop distances.

Every entry is normalised by the target's degree counting its self-loop:
``A[k, j, i] = 1 / deg(i)`` for the pairs of partition k, else 0. A graph convolution then reads
``out[..., i] = sum_k sum_j W_k x[..., j] A[k, j, i]`` (a mean over the neighbourhood per partition).
ST-GCN's NTU RGB+D and NW-UCLA graphs are centred on the spine shoulder and the shoulder centre:
the roots of ``ntu25`` and ``kinect_v1_20`` (their ``center``, used for centring the data, is the
spine mid), hence ``center="root"`` by default.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from pcm3.errors import ConfigError
from pcm3.layouts import Layout

CENTERS = ("root", "layout")
PARTITIONS = ("spatial", "spatial_one_hop")
NUM_PARTITIONS = 3


def bone_adjacency(layout: Layout) -> np.ndarray:
    """Boolean ``(V, V)`` symmetric matrix of the layout's bones, without self-loops."""
    adjacency = np.zeros((layout.num_joints, layout.num_joints), dtype=bool)
    for child, parent in layout.bones:
        adjacency[child, parent] = adjacency[parent, child] = True
    return adjacency


def connected_components(layout: Layout) -> list[list[int]]:
    """The joints of each connected component of the bone graph, in order of their smallest joint."""
    adjacency = bone_adjacency(layout)
    component = np.full(layout.num_joints, -1)
    groups: list[list[int]] = []
    for start in range(layout.num_joints):
        if component[start] >= 0:
            continue
        component[start] = len(groups)
        members, queue = [], deque([start])
        while queue:
            j = queue.popleft()
            members.append(j)
            for k in np.flatnonzero(adjacency[j] & (component < 0)):
                component[k] = len(groups)
                queue.append(int(k))
        groups.append(sorted(members))
    return groups


def component_centres(layout: Layout, center: str = "root") -> list[int]:
    """The centre joint of each component of :func:`connected_components` (see the module docstring)."""
    if center not in CENTERS:
        raise ConfigError(f"graph centre must be one of {CENTERS}, got {center!r}")
    centres = []
    for members in connected_components(layout):
        roots = [j for j in members if layout.parents[j] == j]
        if not roots:
            names = [layout.joint_names[j] for j in members]
            raise ConfigError(
                f"layout {layout.name!r}: the parents of joints {names} form a cycle with no root "
                "(a joint that is its own parent); every group of joints joined by bones needs one root"
            )
        if center == "layout" and layout.center in members:
            centres.append(int(layout.center))
        else:
            centres.append(roots[0])  # a component of a parents array holds exactly one root
    return centres


def hops_to_centre(layout: Layout, center: str = "root") -> np.ndarray:
    """``(V,)`` int: hop distance of every joint to the centre of its component."""
    adjacency = bone_adjacency(layout)
    hops = np.full(layout.num_joints, -1, dtype=np.int64)
    for centre in component_centres(layout, center):
        hops[centre] = 0
        queue = deque([centre])
        while queue:
            j = queue.popleft()
            for k in np.flatnonzero(adjacency[j] & (hops < 0)):
                hops[k] = hops[j] + 1
                queue.append(int(k))
    return hops


def spatial_partition_adjacency(layout: Layout, center: str = "root",
                                partition: str = "spatial") -> np.ndarray:
    """ST-GCN's spatial-partition adjacency ``(3, V, V)`` float32, ``[k, source j, target i]``."""
    if partition not in PARTITIONS:
        raise ConfigError(f"graph partition must be one of {PARTITIONS}, got {partition!r}")
    neighbours = bone_adjacency(layout)
    degree = neighbours.sum(axis=0) + 1  # the self-loop counts
    hops = hops_to_centre(layout, center)
    if partition == "spatial_one_hop":
        hops = np.minimum(hops, 2)  # "farther than one hop": all equal, as an infinite distance
    not_closer = hops[:, None] >= hops[None, :]  # [j, i]: d[j] >= d[i]
    partitions = np.stack([np.eye(layout.num_joints, dtype=bool),
                           neighbours & not_closer, neighbours & ~not_closer])
    return (partitions / degree[None, None, :]).astype(np.float32)
