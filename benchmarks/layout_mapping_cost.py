"""What a joint mapping costs: NW-UCLA's Kinect v1 skeletons projected onto the COCO-17 joints
(the limbs; the five face points at the head) and mapped back onto kinect_v1_20 (spine, hip and
shoulder centres synthesised; hands and feet absent), then linear and 1-NN recognition
(views 1+2 train, view 3 test) against the original layout::

    python benchmarks/layout_mapping_cost.py --source ../shared/data/nw_ucla \\
        --encoder runs/nwucla/checkpoints/last.pt --note "configs/pcm3_nwucla_cpu.yaml" \\
        --work runs/layout_mapping_cost --write benchmarks/README.md

Both stores go through the same reader and pre-processing (repair, centre, align with the
Kinect v1 joints); only the round trip through COCO-17 differs. Columns: ``original``; the round
trip with absent joints copying the nearest mapped joint (``nearest``, the default) or left
zero (``zero``); and a probe trained on original clips scoring round-tripped test clips
(``original -> nearest``: a classifier trained on Kinect data reading mapped skeletons).
Without ``--encoder`` only raw coordinates are scored.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcm3.data.formats import read
from pcm3.data.layout_transform import map_converted, store_records
from pcm3.data.preprocess import STEPS, describe, make_transform
from pcm3.data.records import Converted
from pcm3.data.store import SkeletonStore, open_store, write_trimmed
from pcm3.layout_mapping import layout_mapping
from pcm3.tasks.base import TaskContext, get_task, raw_encoder, store_input_shape
from pcm3.tasks.encoders import LoadedEncoder, load_encoder

START, END = "<!-- layout-mapping-cost:start -->", "<!-- layout-mapping-cost:end -->"
CONDITIONS = ("original", "nearest", "zero", "original -> nearest")
TRAIN, TEST = "xview/train", "xview/val"


def round_trip(converted: Converted, absent: str) -> Converted:
    """``converted`` (kinect_v1_20) projected onto coco17 and mapped back with ``absent`` fill."""
    coco = map_converted(converted, "coco17")
    return map_converted(coco, converted.layout, absent)


def joint_displacement(before: Converted, after: Converted) -> dict[str, float]:
    """Mean distance (metres) between each joint before and after the round trip, over the
    frames where it is present in both, keyed by joint name."""
    total = np.zeros(before.layout.num_joints)
    count = np.zeros(before.layout.num_joints)
    for a, b in zip(before.samples, after.samples, strict=True):
        present = (a.x != 0).any(axis=0) & (b.x != 0).any(axis=0)  # (T, V, M)
        dist = np.linalg.norm(a.x - b.x, axis=0)
        total += (dist * present).sum(axis=(0, 2))
        count += present.sum(axis=(0, 2))
    return dict(zip(before.layout.joint_names, (total / np.maximum(count, 1)).tolist(), strict=True))


def write_store(records: Converted, out: Path) -> SkeletonStore:
    channels = records.samples[0].x.shape[0]
    return write_trimmed(out, records, None, make_transform(records.layout, STEPS),
                         describe(records.layout, STEPS, channels))


def mixed_store(original: Path, mapped: Path, out: Path) -> SkeletonStore:
    """Training split from ``original``, test split from ``mapped`` (both already pre-processed)."""
    a, b = store_records(original), store_records(mapped)
    train, test = set(a.splits[TRAIN]), set(b.splits[TEST])
    samples = [s for s in a.samples if s.id in train]
    samples += [type(s)(f"{s.id}@mapped", s.x, s.label) for s in b.samples if s.id in test]
    splits = {TRAIN: sorted(train), TEST: sorted(f"{i}@mapped" for i in test)}
    mixed = Converted(a.layout, a.class_names, samples, splits, source={"format": "mixed"})
    return write_trimmed(out, mixed, preprocessing=open_store(original).meta["preprocessing"])


def score(loaded: LoadedEncoder, store: Path, seed: int) -> dict[str, float]:
    """Linear top-1 and 1-NN top-1 (percent) on the views 1+2 / view 3 splits."""
    out = {}
    for task, metric in (("linear", "top1"), ("knn", "top1")):
        spec = get_task(task)
        cfg = spec.config(train_split=TRAIN, test_split=TEST)
        ctx = TaskContext(loaded, store, torch.device("cpu"), seed)
        out[task] = float(spec.run(ctx, cfg)[metric])
    return out


def markdown(rows: list[dict[str, Any]], displacement: dict[str, dict[str, float]], kinds: dict[str, str],
             note: str) -> str:
    """The results block: accuracy per representation, task and condition; joint displacement."""
    lines = [START, "", f"{note}", "",
             "| representation | task | " + " | ".join(CONDITIONS) + " | cost (nearest) |",
             "|---|---|" + "---:|" * (len(CONDITIONS) + 1)]
    for row in rows:
        values = [row[c] for c in CONDITIONS]
        cost = row["nearest"] - row["original"]
        lines.append(f"| {row['representation']} | {row['task']} | "
                     + " | ".join(f"{v:.1f}" for v in values) + f" | {cost:+.1f} |")
    lines += ["", "Mean displacement of the joints by the round trip (raw Kinect coordinates, cm):", "",
              "| joint | kind | nearest | zero |", "|---|---|---:|---:|"]
    for joint, kind in kinds.items():
        if kind != "direct":
            zero = "missing" if kind == "absent" else f"{100 * displacement['zero'][joint]:.1f}"
            lines.append(f"| `{joint}` | {kind} | {100 * displacement['nearest'][joint]:.1f} | {zero} |")
    direct = [j for j, k in kinds.items() if k == "direct"]
    lines.append(f"| the {len(direct)} direct joints | direct | "
                 f"{100 * max(displacement['nearest'][j] for j in direct):.1f} (max) | "
                 f"{100 * max(displacement['zero'][j] for j in direct):.1f} (max) |")
    return "\n".join([*lines, "", END])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=Path("../shared/data/nw_ucla"), help="NW-UCLA folder")
    p.add_argument("--encoder", help="pcm3 checkpoint or export pre-trained on NW-UCLA (kinect_v1_20)")
    p.add_argument("--note", default="", help="how the encoder was trained (printed above the table "
                                                 "instead of its path)")
    p.add_argument("--work", type=Path, default=Path("runs/layout_mapping_cost"), help="stores go here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--write", type=Path, help="put the results block into this Markdown file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    converted = read(args.source, "nw-ucla")
    stores = {"original": write_store(converted, args.work / "original").path}
    displacement = {}
    for absent in ("nearest", "zero"):
        mapped = round_trip(converted, absent)
        displacement[absent] = joint_displacement(converted, mapped)
        stores[absent] = write_store(mapped, args.work / absent).path
    mixed = mixed_store(stores["original"], stores["nearest"], args.work / "mixed")
    stores["original -> nearest"] = mixed.path
    store = open_store(stores["original"])
    encoders: list[tuple[str, LoadedEncoder]] = []
    if args.encoder:
        encoders.append(("pcm3 encoder", load_encoder(args.encoder)))
    frames = encoders[0][1].view_frames if encoders else 64
    encoders.insert(0, ("raw coordinates", raw_encoder(store.layout, *store_input_shape(store), frames)))
    rows = []
    for name, loaded in encoders:
        results = {c: score(loaded, stores[c], args.seed) for c in CONDITIONS}
        for task in ("linear", "knn"):
            rows.append({"representation": name, "task": f"{task} top-1",
                         **{c: results[c][task] for c in CONDITIONS}})
            print(rows[-1], flush=True)
    kinds = dict(zip(store.layout.joint_names, layout_mapping("coco17", store.layout).kinds, strict=True))
    encoder = args.note or f"`{args.encoder}`"
    note = (f"NW-UCLA ({len(store)} clips), views 1+2 train / view 3 test, seed {args.seed}, the tasks' "
            f"default settings; encoder: {encoder if args.encoder else 'none'}; {os.cpu_count()} CPUs.")
    block = markdown(rows, displacement, kinds, note)
    print(block)
    if args.write:
        from machine_blocks import write_marked  # the scripts' folder is on sys.path when run

        write_marked(args.write, START, END, block)


if __name__ == "__main__":
    main()
