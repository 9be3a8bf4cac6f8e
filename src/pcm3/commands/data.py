"""``pcm3 data convert|synth|info|show``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from pcm3.errors import Pcm3Error


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="convert, generate, inspect and look at skeleton data")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(data))
    dsub.required = True

    from pcm3.data.formats import FORMATS
    from pcm3.data.pose.estimator import COORDS
    from pcm3.data.preprocess import STEPS
    from pcm3.layout_mapping import ABSENT_FILLS

    p = dsub.add_parser("convert", help="convert a dataset into the canonical store")
    p.add_argument("src", type=Path, help="source file or folder")
    p.add_argument("--format", required=True, choices=sorted(FORMATS), help="source format")
    p.add_argument("--out", required=True, type=Path, help="store folder to write")
    p.add_argument("--layout", help="layout name or layout .yaml (formats without a fixed layout)")
    p.add_argument("--missing-list", type=Path, action="append", default=[],
                   help="NTU missing-skeleton list; samples named there are dropped (repeatable)")
    p.add_argument("--split-file", type=Path, help="override the format's split file")
    p.add_argument("--labels", type=Path, help="label file or folder, when not beside the data")
    p.add_argument("--max-bodies", type=int, default=2, help="bodies kept per sample (default 2)")
    p.add_argument("--max-frames", type=int, help="cap T of the trimmed store (longer clips are cut)")
    p.add_argument("--preprocess", default=",".join(STEPS),
                   help=f"comma-separated steps from {','.join(STEPS)}, or 'none' "
                        f"(default: all; untrimmed sequences get centre,align only)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip bad samples and write a report of each instead of stopping")
    p.add_argument("--map-layout", metavar="LAYOUT",
                   help="put the skeletons into this layout before pre-processing (docs/layouts.md)")
    p.add_argument("--absent-joints", choices=ABSENT_FILLS, default="nearest",
                   help="--map-layout: joints the source lacks copy the nearest mapped joint, "
                        "or stay zero")
    video = p.add_argument_group("video format (docs/video.md)")
    video.add_argument("--coords", choices=COORDS, default="world",
                       help="world: 3D landmarks in metres (default); image: 2D, in units of the "
                            "frame height")
    video.add_argument("--min-visibility", type=float, default=0.5, metavar="V",
                       help="a joint seen with visibility below V (0..1) is stored as missing (default 0.5)")
    video.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=convert)

    p = dsub.add_parser("map-layout", help="write a copy of a store in another joint layout")
    p.add_argument("src", type=Path, help="store folder")
    p.add_argument("--layout", required=True, help="target layout (e.g. ntu25, kinect_v1_20)")
    p.add_argument("--out", required=True, type=Path, help="store folder to write")
    p.add_argument("--absent-joints", choices=ABSENT_FILLS, default="nearest",
                   help="joints the source lacks copy the nearest mapped joint (default), or stay zero")
    p.add_argument("--preprocess", default=",".join(STEPS),
                   help="steps applied after mapping, with the target layout's joints (default: all)")
    p.set_defaults(func=map_layout)

    p = dsub.add_parser("synth", help="generate the built-in procedural dataset")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=("tiny", "default"), default="default")
    p.set_defaults(func=synth)

    p = dsub.add_parser("info", help="summarise a store")
    p.add_argument("path", type=Path)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=info)

    p = dsub.add_parser("show", help="animate one sample as a 3D stick figure (GIF/MP4)")
    p.add_argument("path", type=Path)
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--fps", type=int, default=15)
    p.set_defaults(func=show)


def _parse_steps(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(s.strip() for s in text.split(",") if s.strip())


def convert(args: argparse.Namespace) -> int:
    from pcm3.data.formats import ReadOptions, read
    from pcm3.data.pose.estimator import VideoPoseOptions
    from pcm3.data.preprocess import describe, make_transform
    from pcm3.data.store import UNTRIMMED_DIR, WriteOptions, write_trimmed, write_untrimmed

    if args.max_bodies < 1:
        raise Pcm3Error("--max-bodies must be at least 1")
    options = ReadOptions(
        layout=args.layout,
        missing_list=tuple(args.missing_list),
        split_file=args.split_file,
        labels=args.labels,
        max_bodies=args.max_bodies,
        skip_bad=args.skip_bad,
        video=VideoPoseOptions(args.coords, args.min_visibility, progress=not args.no_progress),
    )
    steps = _parse_steps(args.preprocess)
    converted = read(args.src, args.format, options)
    if args.map_layout:
        from pcm3.data.layout_transform import map_converted

        converted = map_converted(converted, args.map_layout, args.absent_joints)
    layout = converted.layout
    if "repair" in steps and any(s.confidence is not None for s in converted.samples):
        steps = tuple(s for s in steps if s != "repair")  # repair moves frames, scores would not follow
        print("note: null-frame repair skipped (the data carries per-joint confidence scores)")
    wrote = []
    if converted.sequences:
        seq_steps = tuple(s for s in steps if s != "repair")
        args.out.mkdir(parents=True, exist_ok=True)
        store = write_untrimmed(args.out / UNTRIMMED_DIR, converted, make_transform(layout, seq_steps),
                                describe(layout, seq_steps, channels=converted.sequences[0].x.shape[0]))
        wrote.append(f"{len(store)} untrimmed sequences ({store.num_intervals} intervals) -> "
                     f"{args.out / UNTRIMMED_DIR}")
    if converted.samples:
        trimmed = write_trimmed(args.out, converted, WriteOptions(args.max_frames),
                                make_transform(layout, steps),
                                describe(layout, steps, channels=converted.samples[0].x.shape[0]))
        wrote.append(f"{len(trimmed)} samples, {trimmed.num_classes} classes -> {args.out}")
    if not wrote:
        raise Pcm3Error(f"{args.src}: the source produced neither samples nor sequences")
    if converted.skipped:
        report = args.out / "skipped.json"
        report.write_text(json.dumps([s.to_dict() for s in converted.skipped], indent=1))
        wrote.append(f"skipped {len(converted.skipped)} bad samples, listed in {report}:")
        wrote += [f"  {s.path}: {s.reason}" for s in converted.skipped[:10]]
        wrote += [f"  ... and {len(converted.skipped) - 10} more"] if len(converted.skipped) > 10 else []
    print("\n".join(wrote))
    return 0


def map_layout(args: argparse.Namespace) -> int:
    from pcm3.data.layout_transform import write_mapped_store

    mapping, store = write_mapped_store(args.src, args.out, args.layout, args.absent_joints,
                                        _parse_steps(args.preprocess))
    kinds = list(mapping.kinds)
    print(f"{mapping.source.name} -> {mapping.target.name}: {kinds.count('direct')} joints direct, "
          f"{kinds.count('synthesised')} synthesised, {kinds.count('absent')} absent "
          f"({'filled from the nearest mapped joint' if args.absent_joints == 'nearest' else 'zero'})")
    print(f"{len(store)} {'samples' if store.kind == 'trimmed' else 'sequences'} -> {args.out}")
    return 0


def synth(args: argparse.Namespace) -> int:
    from pcm3.data.synthetic import synthesize_store

    store = synthesize_store(args.out, seed=args.seed, size=args.size)
    print(f"built-in dataset: {len(store)} samples, {store.num_classes} classes -> {args.out}")
    return 0


def store_summary(path: Path) -> dict[str, Any]:
    """The facts ``pcm3 data info`` prints, as a JSON-friendly dict."""
    from pcm3.data.store import UNTRIMMED_DIR, SkeletonStore, open_store, open_untrimmed

    store = open_store(path)
    out: dict[str, Any] = {"path": str(path), "kind": store.kind, "layout": store.layout.name,
                           "num_joints": store.layout.num_joints, "fingerprint": store.fingerprint,
                           "class_names": store.class_names, "num_classes": store.num_classes,
                           "preprocessing": store.meta.get("preprocessing", {})}
    if isinstance(store, SkeletonStore):
        labels = store.labels
        counts = np.bincount(labels[labels >= 0], minlength=store.num_classes)
        lengths = store.lengths
        bodies = _bodies_present(store)
        out.update(
            num_samples=len(store),
            unlabelled=int((labels < 0).sum()),
            class_counts={n: int(c) for n, c in zip(store.class_names, counts, strict=True)},
            splits={name: len(store.split(name)) for name in store.split_names},
            max_length=store.max_length,
            length_stats=_stats(lengths),
            bodies={str(k): int(v) for k, v in zip(*np.unique(bodies, return_counts=True), strict=True)},
            channels=store.meta["channels"],
        )
        if (store.path / UNTRIMMED_DIR / "meta.json").exists():
            untrimmed = _untrimmed_summary(open_untrimmed(store.path))
            out["untrimmed"] = untrimmed
            out.update(num_sequences=untrimmed["num_sequences"],
                       num_intervals=untrimmed["num_intervals"])
    else:
        untrimmed = _untrimmed_summary(store)
        out.update(untrimmed, num_samples=untrimmed["num_sequences"],
                   splits=untrimmed["sequence_splits"],
                   max_length=untrimmed["sequence_length_stats"].get("max", 0))
    return out


def _untrimmed_summary(store: Any) -> dict[str, Any]:
    return {
        "num_sequences": len(store),
        "num_intervals": store.num_intervals,
        "sequence_splits": {name: len(store.split(name)) for name in store.split_names},
        "sequence_length_stats": _stats(store.lengths),
        "fingerprint": store.fingerprint,
    }


def _stats(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    return {"min": int(values.min()), "median": float(np.median(values)),
            "mean": round(float(values.mean()), 2), "max": int(values.max())}


def _bodies_present(store: Any, chunk: int = 1024) -> np.ndarray:
    """Number of non-empty bodies per sample, read chunk by chunk from the memory map."""
    out = []
    for start in range(0, len(store), chunk):
        x = np.asarray(store.x[start : start + chunk])
        out.append((np.abs(x).sum(axis=(1, 2, 3)) > 0).sum(axis=1))
    return np.concatenate(out)


def info(args: argparse.Namespace) -> int:
    summary = store_summary(args.path)
    if args.json:
        print(json.dumps(summary))
        return 0
    lines = [f"store        {summary['path']} ({summary['kind']})",
             f"layout       {summary['layout']} ({summary['num_joints']} joints)",
             f"fingerprint  {summary['fingerprint']}"]
    if summary["kind"] == "trimmed":
        ls = summary["length_stats"]
        lines += [
            f"samples      {summary['num_samples']} ({summary['unlabelled']} unlabelled), "
            f"T = {summary['max_length']}",
            f"lengths      min {ls['min']}, median {ls['median']:g}, mean {ls['mean']}, max {ls['max']}",
            "bodies       " + ", ".join(f"{k}: {v}" for k, v in summary["bodies"].items()),
            f"classes      {summary['num_classes']}",
        ]
        lines += [f"  {count:6d}  {name}" for name, count in summary["class_counts"].items()]
        lines.append("splits       " + (", ".join(f"{k}: {v}" for k, v in summary["splits"].items())
                                        or "none"))
    untrimmed = summary.get("untrimmed", summary if summary["kind"] == "untrimmed" else None)
    if untrimmed:
        lines.append(f"untrimmed    {untrimmed['num_sequences']} sequences, "
                     f"{untrimmed['num_intervals']} intervals; splits "
                     + ", ".join(f"{k}: {v}" for k, v in untrimmed["sequence_splits"].items()))
    steps = summary["preprocessing"].get("steps")
    lines.append(f"preprocessed {', '.join(steps) if steps else 'no'}")
    print("\n".join(lines))
    return 0


def show(args: argparse.Namespace) -> int:
    from pcm3.viz.skeleton_animation import show_store_sample

    out = show_store_sample(args.path, args.index, args.out, fps=args.fps)
    print(f"wrote {out}")
    return 0
