"""``pcm3 embed``: features of a store's clips or of videos from a pre-trained encoder."""

from __future__ import annotations

import argparse
from pathlib import Path

from pcm3.errors import Pcm3Error


def register(sub: argparse._SubParsersAction) -> None:
    from pcm3.data.pose.estimator import COORDS
    from pcm3.layout_mapping import ABSENT_FILLS

    p = sub.add_parser("embed", help="write features of a store's clips or of videos (docs/embedding.md)")
    p.add_argument("--encoder", required=True, metavar="PATH",
                   help="a pcm3 checkpoint (.pt) or exported encoder (.safetensors)")
    p.add_argument("--data", required=True, type=Path, metavar="STORE|VIDEO",
                   help="a store folder, a video file, or a folder of videos (<class>/<name>.mp4, ...)")
    p.add_argument("--out", required=True, type=Path, metavar="FEATURES.npy",
                   help="features file; OUT.ids.txt and OUT.json are written beside it")
    p.add_argument("--dense", action="store_true",
                   help="one feature per frame (rows clip after clip) instead of one per clip")
    p.add_argument("--dense-mode", choices=("window", "sequence"),
                   help="--dense: the detection task's per-frame features (default: its default, window: "
                        "64 frames around each frame; sequence: one causal pass)")
    p.add_argument("--map-layout", metavar="LAYOUT",
                   help="map data of another layout onto this one, the encoder's (docs/layouts.md)")
    p.add_argument("--absent-joints", choices=ABSENT_FILLS, default="nearest",
                   help="--map-layout: joints the data lacks copy the nearest mapped joint, or stay zero")
    p.add_argument("--split", help="a store: only this split (e.g. xsub/val)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    p.add_argument("--batch-size", type=int, default=64, help="clips per encoder call")
    video = p.add_argument_group("videos (docs/video.md)")
    video.add_argument("--coords", choices=COORDS, default="world", help="world (3D, default) or image (2D)")
    video.add_argument("--min-visibility", type=float, default=0.5, metavar="V",
                       help="a joint seen with visibility below V is missing (default 0.5)")
    video.add_argument("--skip-bad", action="store_true", help="skip unreadable videos and list them")
    video.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=embed)


def embed(args: argparse.Namespace) -> int:
    from pcm3.data.pose.estimator import VideoPoseOptions
    from pcm3.embedding import load_encoder
    from pcm3.embedding_inputs import embed_clips, is_store, store_clips, video_clips, write_features
    from pcm3.engine.runtime import resolve_runtime

    if args.batch_size < 1:
        raise Pcm3Error("--batch-size must be at least 1")
    from pcm3.tasks.detection import DetectionConfig

    dense = DetectionConfig() if args.dense_mode is None else DetectionConfig(features=args.dense_mode)
    embedder = load_encoder(args.encoder, resolve_runtime(args.device).device, batch_size=args.batch_size,
                            dense_options=dense.feature_options())
    if is_store(args.data):
        clips = store_clips(args.data, args.split)
    else:
        if args.split is not None:
            raise Pcm3Error("--split is for a store; --data is not one (no meta.json)")
        options = VideoPoseOptions(args.coords, args.min_visibility, progress=not args.no_progress)
        clips = video_clips(args.data, options, args.skip_bad)
    features, lengths = embed_clips(embedder, clips, args.dense, args.map_layout, args.absent_joints)
    paths = write_features(args.out, features, clips, lengths, embedder, args.dense)
    what = f"{len(features)} frames of {len(clips)} clips" if args.dense else f"{len(clips)} clips"
    print(f"{what} -> {paths[0]} {tuple(features.shape)}; ids in {paths[1]}, details in {paths[2]}")
    for s in clips.info.get("skipped", []):
        print(f"skipped {s['path']}: {s['reason']}")
    return 0
