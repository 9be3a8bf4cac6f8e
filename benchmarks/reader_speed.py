"""How fast the format readers turn real files into arrays (was a timed assertion in the unit tests).

    .venv/bin/python benchmarks/reader_speed.py                 # NW-UCLA, NTU samples, PKU-MMD Part I
    .venv/bin/python benchmarks/reader_speed.py --formats nw-ucla --repeats 5

Reads each dataset of ``$PCM3_DATA`` (default ``../shared/data`` beside the checkout) with its
reader ``--repeats`` times and prints the median wall-clock time, clips (or recordings) per
second, and this machine's CPU line. The unit tests check what is read; this script how fast.
The old bound it replaces: all 1484 NW-UCLA clips in under 8 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {  # reader format -> folder under the real-data root
    "nw-ucla": "nw_ucla",
    "ntu-raw": "ntu_rgbd_samples/skeletons",
    "pku-mmd": "pku_mmd_part1",
}


def time_reader(path: Path, fmt: str, repeats: int) -> dict[str, float]:
    from pcm3.data.formats import read

    times, count = [], 0
    for _ in range(repeats):
        tick = time.perf_counter()
        converted = read(path, fmt)
        times.append(time.perf_counter() - tick)
        count = len(converted.samples) + len(converted.sequences)
    seconds = statistics.median(times)
    return {"items": count, "seconds": seconds, "items_per_s": count / seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(os.environ.get("PCM3_DATA") or ROOT.parent / "shared" / "data")
    p.add_argument("--data", type=Path, default=default,
                   help="the real-data folder (default $PCM3_DATA, else ../shared/data)")
    p.add_argument("--formats", default=",".join(DATASETS))
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    from pcm3.engine.hardware import probe_hardware
    from pcm3.engine.threads import configure_threads

    threads, _ = configure_threads()
    print(f"Machine: {probe_hardware().capability_line()}, torch threads {threads}  ")
    print(f"Load average (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| format | folder | clips or recordings | seconds (median) | per second |")
    print("|---|---|---|---|---|")
    for fmt in args.formats.split(","):
        if fmt not in DATASETS:
            raise SystemExit(f"unknown format {fmt!r}; choose from {', '.join(DATASETS)}")
        folder = args.data / DATASETS[fmt]
        if not folder.exists():
            print(f"| {fmt} | {folder} | missing | | |")
            continue
        r = time_reader(folder, fmt, args.repeats)
        print(f"| {fmt} | {DATASETS[fmt]} | {r['items']} | {r['seconds']:.2f} | {r['items_per_s']:.0f} |")


if __name__ == "__main__":
    main()
