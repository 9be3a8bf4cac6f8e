"""``pcm3 pretrain`` and ``pcm3 export``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pre-training (PCM3, ...)")
    p.add_argument("--config", type=Path, help="YAML config (see configs/)")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--resume", nargs="?", const="auto", default="auto", metavar="CKPT",
                   help="resume from CKPT (default: the run folder's latest checkpoint, if any)")
    p.add_argument("--fresh", action="store_true", help="ignore existing checkpoints in the run folder")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.01")
    p.set_defaults(func=pretrain)

    p = sub.add_parser("export", help="write a checkpoint's encoder as safetensors (or ONNX) + its config")
    p.add_argument("checkpoint", type=Path, help="a checkpoint (.pt) or an exported encoder (.safetensors)")
    p.add_argument("--out", type=Path, required=True,
                   help="e.g. encoder.safetensors (encoder.onnx with --onnx)")
    p.add_argument("--onnx", action="store_true",
                   help="write an ONNX graph of the sequence feature instead (needs pcm3[onnx])")
    p.set_defaults(func=export)


def pretrain(args: argparse.Namespace) -> int:
    from pcm3.config import load_config
    from pcm3.engine.config import PretrainConfig
    from pcm3.engine.pretrain import run_pretraining

    cfg = load_config(PretrainConfig, args.config, args.overrides)
    resume = None if args.fresh else ("auto" if args.resume == "auto" else Path(args.resume))
    summary = run_pretraining(cfg, args.out, resume=resume)
    if summary is not None:
        print(json.dumps(summary))
    return 0


def export(args: argparse.Namespace) -> int:
    from pcm3.tasks.encoders import export_encoder

    path = export_encoder(args.checkpoint, args.out, onnx=args.onnx)
    print(f"wrote {path}")
    return 0
