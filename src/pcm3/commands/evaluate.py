"""``pcm3 eval TASK``: one downstream task for one encoder on one store; refused when the test
data overlaps the encoder's pre-training samples, unless ``--allow-overlap``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from pcm3.errors import Pcm3Error


def register(sub: argparse._SubParsersAction) -> None:
    from pcm3.tasks.base import TASK_MODULES

    p = sub.add_parser("eval", help="evaluate an encoder on one downstream task",
                       description=f"tasks: {', '.join(sorted(TASK_MODULES))}")
    p.add_argument("task", metavar="TASK", help="linear, knn, occlusion, detection, ...")
    p.add_argument("--encoder", required=True, metavar="PATH|random|raw",
                   help="a checkpoint (.pt) or exported encoder (.safetensors); 'random' = random-init "
                        "of the --config architecture; 'raw' = the raw coordinates")
    p.add_argument("--encoder-format", default="auto", metavar="FORMAT",
                   help="format of the --encoder file: auto (recognised from its keys), pcm3, official-pcm3, "
                        "official-cmd, official-skeletonclr, official-aimclr, official-mamp")
    p.add_argument("--encoder-stream", choices=("joint", "motion", "bone"), metavar="STREAM",
                   help="official checkpoints: the stream the encoder was pre-trained on (default joint; "
                        "for CMD also which of its three encoders is used)")
    p.add_argument("--data", required=True, metavar="STORE",
                   help="store folder ('synthetic' = the built-in data; for detection the untrimmed folder)")
    p.add_argument("--config", type=Path, metavar="CFG",
                   help="pre-training config YAML giving the architecture of --encoder random "
                        "(and the view length of --encoder raw)")
    p.add_argument("--out", type=Path, metavar="DIR", help="write DIR/<task>.json (and caches/pictures)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--save-head", type=Path, metavar="HEAD.safetensors",
                   help="detection: write the trained frame classifier (for pcm3 demo)")
    p.add_argument("--allow-overlap", action="store_true",
                   help="run even when the test data overlaps the encoder's pre-training samples "
                        "(the result is labelled as overlapping)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="task config overrides, e.g. epochs=10")
    p.set_defaults(func=evaluate)


def open_data(data: str) -> Any:
    """The store named by ``--data`` (``synthetic`` / ``builtin`` are generated on first use)."""
    from pcm3.data.store import open_store

    if data in ("synthetic", "builtin"):
        from pcm3.engine.pretrain import resolve_store

        return resolve_store(data)
    return open_store(data)


def make_encoder(spec: str, config: Path | None, store: Any, seed: int, encoder_format: str = "auto",
                 stream: str | None = None) -> Any:
    """The encoder named by ``--encoder``: a file (of ``encoder_format``), ``random`` or ``raw``."""
    from pcm3.config import load_config
    from pcm3.engine.config import PretrainConfig
    from pcm3.tasks.base import raw_encoder, store_input_shape
    from pcm3.tasks.encoders import load_encoder, random_encoder

    channels, persons = store_input_shape(store)
    if spec in ("random", "raw") and (encoder_format != "auto" or stream is not None):
        raise Pcm3Error("--encoder-format and --encoder-stream are for encoder files, "
                        "not --encoder random / raw")
    if spec == "random":
        if config is None:
            raise Pcm3Error("--encoder random needs --config CFG (a pre-training config: the architecture)")
        return random_encoder(load_config(PretrainConfig, config), store.layout, channels, persons, seed)
    if spec == "raw":
        if config is None:
            return raw_encoder(store.layout, channels, persons)
        cfg = load_config(PretrainConfig, config)
        return raw_encoder(store.layout, channels, persons, cfg.augment.view_frames, cfg.stream)
    if config is not None:
        raise Pcm3Error("--config is only for --encoder random or raw; an encoder file carries its config")
    return load_encoder(spec, encoder_format, stream)


def format_table(task: str, metrics: dict[str, float], encoder: str, seconds: float) -> str:
    width = max([len("metric"), *map(len, metrics)])
    lines = [f"{task} | encoder {encoder} | {seconds:.1f} s", f"{'metric':<{width}}  value"]
    lines += [f"{k:<{width}}  {v:.2f}" for k, v in metrics.items()]
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> int:
    from pcm3.config import apply_overrides, from_dict, to_dict
    from pcm3.data.sample_record import held_out_classes
    from pcm3.engine.runtime import resolve_runtime
    from pcm3.tasks.base import TaskContext, check_compatible, get_task
    from pcm3.tasks.leakage import check_leakage
    from pcm3.tasks.results import result_record, write_result

    spec = get_task(args.task)
    overrides = list(args.overrides)
    if args.save_head is not None:
        if args.task != "detection":
            raise Pcm3Error(f"--save-head is an option of the detection task, not of {args.task!r}")
        overrides.append(f"save_head={args.save_head}")
    cfg = from_dict(spec.config, apply_overrides({}, overrides))
    runtime = resolve_runtime(args.device)
    device = runtime.device
    store = open_data(args.data)
    encoder = make_encoder(args.encoder, args.config, store, args.seed, args.encoder_format,
                           args.encoder_stream)
    check_compatible(encoder, store)
    leakage = check_leakage(encoder, args.task, cfg, store, args.allow_overlap)
    if not args.json:
        print(f"[eval] {runtime.describe()}")
        print(f"[eval] overlap of the test data with the encoder's pre-training samples: {leakage.label}")
    ctx = TaskContext(encoder, store.path, device, args.seed, args.out)
    start = time.perf_counter()
    metrics = {k: float(v) for k, v in spec.run(ctx, cfg).items()}
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps(metrics))
    else:
        print(format_table(args.task, metrics, encoder.source, seconds))
    if args.out is not None:
        record = result_record(args.task, metrics, config=to_dict(cfg), seed=args.seed,
                               encoder=encoder.source, data_fingerprint=store.fingerprint, seconds=seconds)
        record.update(runtime=runtime.to_dict(), pretraining_overlap=leakage.label,
                      overlap_examples=leakage.examples,
                      held_out_classes=held_out_classes(encoder.pretraining))
        path = write_result(args.out / f"{args.task}.json", record)
        if not args.json:
            print(f"wrote {path}")
    return 0
