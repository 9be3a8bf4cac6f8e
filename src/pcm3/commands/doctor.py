"""``pcm3 doctor``: versions, hardware, threads, what ``auto`` picks, and a step micro-benchmark."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pcm3.errors import Pcm3Error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="what a bug report needs: versions, hardware, precision, speed")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="budget of the micro-benchmark, shared by the precisions (default 5; 0 = none)")
    p.add_argument("--config", type=Path,
                   help="pre-training config whose step is timed (default configs/pcm3_quick.yaml)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="overrides of the timed config, e.g. batch_size=32")
    p.set_defaults(func=doctor)


def doctor(args: argparse.Namespace) -> int:
    from pcm3.doctor import doctor_report, format_report

    if args.seconds < 0:
        raise Pcm3Error(f"--seconds must be 0 or more, got {args.seconds}")
    report = doctor_report(args.seconds, args.config, args.overrides, args.device)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0
