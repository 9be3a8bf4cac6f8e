"""The methods x backbones table over pre-training seeds: ``pcm3 bench`` once per seed, then one
table of mean +- std.

    python benchmarks/methods_table.py run --bench configs/bench_methods_nwucla.yaml --seed 0 \
        --out runs/methods_nwucla                              # every task of the config
    python benchmarks/methods_table.py run --bench configs/bench_methods_nwucla.yaml --seed 1 \
        --out runs/methods_nwucla --tasks linear,knn           # the repeated tasks only
    python benchmarks/methods_table.py table --out runs/methods_nwucla \
        [--write benchmarks/README.md --marker methods-nwucla]

``run`` writes ``<out>/seed<S>/bench.yaml``: the bench config with ``seed: S`` (the tasks' seed)
and ``seed: S`` in every pre-training entry's overrides (an entry's pre-training has its own
seed), without pictures, optionally keeping only ``--tasks``, then runs ``pcm3 bench`` on it in a subprocess
(a rerun reuses finished entries and resumes an interrupted one). Seeds may run side by side.

``table`` reads every ``<out>/seed*/results.json``: linear and 1-NN top-1 as mean +- std over
the seeds that have them (their other metrics stay in each seed's ``results.md``), every metric
of the other tasks from the lowest seed that has it, and each entry's pre-training minutes (mean
over seeds, from the runs' ``summary.json``: the wall-clock of the process that finished the
run). The caption names the seeds, data fingerprint, code version and CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
from pathlib import Path

import yaml
from machine_blocks import machine, write_marked

from pcm3.tasks.bench_table import aligned_markdown

REPEATED = ("linear/top1", "knn/top1")


def seeded_bench(bench: dict, seed: int, tasks: list[str] | None) -> dict:
    """``bench`` (a bench config mapping) for one seed: the tasks' and every pre-training's seed."""
    out = {**bench, "seed": seed, "pictures": False}
    out["encoders"] = [e if "checkpoint" in e else {**e, "overrides": {**e.get("overrides", {}),
                                                                       "seed": seed}}
                       for e in bench["encoders"]]
    if tasks:
        unknown = sorted(set(tasks) - set(bench["tasks"]))
        if unknown:
            raise SystemExit(f"--tasks {','.join(unknown)}: not in the bench's tasks "
                             f"({', '.join(bench['tasks'])})")
        out["tasks"] = {t: bench["tasks"][t] for t in tasks}
    return out


def run(args: argparse.Namespace) -> int:
    bench = yaml.safe_load(Path(args.bench).read_text())
    folder = Path(args.out) / f"seed{args.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "bench.yaml"
    tasks = args.tasks.split(",") if args.tasks else None
    config.write_text(yaml.safe_dump(seeded_bench(bench, args.seed, tasks), sort_keys=False))
    command = [sys.executable, "-m", "pcm3", "bench", "--config", str(config), "--out", str(folder)]
    return subprocess.run(command, check=False).returncode


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def collect(out: Path) -> dict:
    """Every seed folder's rows, pre-training minutes and provenance under ``out``."""
    seeds = {}
    for folder in sorted(out.glob("seed*/"), key=lambda p: int(p.name[4:])):
        if not (folder / "results.json").exists():
            continue
        provenance = json.loads((folder / "provenance.json").read_text())
        pretrain = provenance.get("pretrain") or {}
        minutes = {name: info["summary"]["seconds"] / 60 for name, info in pretrain.items()
                   if isinstance(info, dict) and "seconds" in (info.get("summary") or {})}
        seeds[int(folder.name[4:])] = {"rows": json.loads((folder / "results.json").read_text()),
                                       "minutes": minutes, "provenance": provenance}
    if not seeds:
        raise SystemExit(f"no seed*/results.json under {out}: run `methods_table.py run` first")
    return seeds


def table(seeds: dict, repeated: tuple[str, ...] = REPEATED) -> str:
    """A row per encoder: the repeated metrics (mean ± std over seeds, with the seed count), the
    other metrics (lowest seed), pre-training minutes."""
    values: dict[tuple[str, str], dict[int, float]] = {}
    order: list[str] = []
    errors: dict[str, str] = {}
    for seed, data in seeds.items():
        for r in data["rows"]:
            order += [r["encoder"]] if r["encoder"] not in order else []
            if r["error"]:
                errors.setdefault(r["encoder"], f"{r['task']} (seed {seed}): {r['error'][:80]}")
                continue
            values.setdefault((r["encoder"], f"{r['task']}/{r['metric']}"), {})[seed] = r["value"]
    repeated_tasks = {m.split("/")[0] for m in repeated}  # their other metrics: each seed's results.md
    others = sorted({m for (_, m) in values
                     if m.split("/")[0] not in repeated_tasks and not m.endswith("_std")})
    header = ["encoder", *(f"{m} (seeds)" for m in repeated), *others, "pre-training min", "error"]
    body = []
    for enc in order:
        cells = [enc]
        for m in repeated:
            got = values.get((enc, m), {})
            cells.append(f"{_mean_std([got[s] for s in sorted(got)])} ({len(got)})" if got else "-")
        for m in others:
            got = values.get((enc, m), {})
            cells.append(f"{got[min(got)]:.1f}" if got else "-")
        minutes = [d["minutes"][enc] for d in seeds.values() if enc in d["minutes"]]
        cells.append(f"{statistics.mean(minutes):.1f}" if minutes else "-")
        cells.append(errors.get(enc, ""))
        body.append(cells)
    return aligned_markdown(header, body, [False, *([True] * (len(header) - 3)), True, False])


def caption(seeds: dict) -> str:
    first = seeds[min(seeds)]["provenance"]
    versions = sorted({d["provenance"]["code_version"] for d in seeds.values()})
    threads = sorted({str((info.get("run_info") or {}).get("threads", "?")) for d in seeds.values()
                      for info in (d["provenance"].get("pretrain") or {}).values() if isinstance(info, dict)})
    m = machine()
    return (f"Seeds {', '.join(map(str, seeds))}; data {first['data']['path']} "
            f"({first['data']['fingerprint']}); code {', '.join(versions)}; {m['capability']}; "
            f"pre-training threads {', '.join(threads)}.")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="one seed of the bench")
    r.add_argument("--bench", required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--tasks", help="comma-separated subset of the bench's tasks (default: all)")
    t = sub.add_parser("table", help="the table over every seed folder of --out")
    t.add_argument("--out", required=True)
    t.add_argument("--write", type=Path, help="put the table between the --marker comments of this file")
    t.add_argument("--marker", default="methods-table")
    args = p.parse_args()
    if args.command == "run":
        raise SystemExit(run(args))
    seeds = collect(Path(args.out))
    text = table(seeds) + "\n" + caption(seeds) + "\n"
    print(text)
    if args.write:
        start, end = f"<!-- {args.marker}:start -->", f"<!-- {args.marker}:end -->"
        stamp = datetime.datetime.now().isoformat(timespec="minutes")
        command = f"python benchmarks/methods_table.py {' '.join(sys.argv[1:])}"
        write_marked(args.write, start, end, f"{start}\nWritten {stamp} by `{command}`\n\n{text}{end}")


if __name__ == "__main__":
    main()
