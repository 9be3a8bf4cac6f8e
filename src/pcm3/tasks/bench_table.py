"""The benchmark's result files: ``results.json`` (a list of rows), ``results.csv`` (the same
rows) and ``results.md`` (one table: a row per task/metric and a column per encoder; with an
``encoders:`` list, :mod:`pcm3.tasks.bench_comparison`: a row per encoder, a column group per task).

A row is ``{"encoder", "task", "metric", "value", "split", "seed", "seconds",
"pretraining_overlap", "held_out_classes", "error"}``; ``error`` is empty, except on the row of a
failure (metric ``error``, value None, task ``pretrain`` when the encoder itself failed), which
holds ``"<exception type>: <message>"``; ``seconds`` is the wall-clock time of the whole task
for that encoder (the same on each of its metric rows); ``pretraining_overlap`` says whether the
evaluated samples overlap the encoder's pre-training samples (``none``, ``<n> samples (allowed)``,
``unchecked: ...``, ``n/a: not pre-trained``); ``held_out_classes`` lists the classes (``; ``
separated) the encoder's pre-training left out, empty when none. In ``results.md`` a value whose
row overlaps is marked ``!`` and the caption names the held-out classes.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pcm3.errors import Pcm3Error

ROW_KEYS = ("encoder", "task", "metric", "value", "split", "seed", "seconds", "pretraining_overlap",
            "held_out_classes", "error")
ERROR_METRIC = "error"
OVERLAP_MARK = "!"


def task_rows(encoder: str, task: str, metrics: dict[str, Any], split: str, seed: int, seconds: float,
              overlap: str = "unchecked", held_out: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per metric of one task run (values as floats)."""
    rows = []
    for metric, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Pcm3Error(f"task {task!r} returned a non-numeric metric {metric!r}: {value!r}")
        rows.append({"encoder": encoder, "task": task, "metric": metric, "value": float(value),
                     "split": split, "seed": seed, "seconds": round(float(seconds), 2),
                     "pretraining_overlap": overlap, "held_out_classes": "; ".join(held_out), "error": ""})
    return rows


def failure_row(encoder: str, task: str, error: str, seed: int) -> dict[str, Any]:
    """The row of a failed task (or, with task ``pretrain``, of an encoder that could not be made)."""
    return {"encoder": encoder, "task": task, "metric": ERROR_METRIC, "value": None, "split": "-",
            "seed": seed, "seconds": 0.0, "pretraining_overlap": "-", "held_out_classes": "", "error": error}


def _overlaps(row: dict[str, Any]) -> bool:
    return str(row.get("pretraining_overlap", "")).endswith("(allowed)")


def data_notes(rows: Sequence[dict[str, Any]]) -> str:
    """Caption sentences on the data behind the rows: overlapping rows (marked ``!``), classes
    held out of an encoder's pre-training (per encoder, with the tasks affected) and encoders
    whose pre-training data could not be checked; empty when there is nothing to say."""
    notes = []
    marked = _order(f"{r['encoder']}/{r['task']} ({r['pretraining_overlap']})" for r in rows if _overlaps(r))
    if marked:
        notes.append(f"{OVERLAP_MARK} = the evaluated samples overlap the encoder's pre-training samples "
                     f"(allow_overlap): {', '.join(marked)}")
    held: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r.get("held_out_classes"):
            held.setdefault((r["encoder"], r["held_out_classes"]), []).append(r["task"])
    for (encoder, classes), tasks in held.items():
        notes.append(f"the {encoder} encoder of {', '.join(_order(tasks))} was pre-trained without classes "
                     f"[{classes}]")
    unchecked = _order(r["encoder"] for r in rows
                       if str(r.get("pretraining_overlap", "")).startswith("unchecked"))
    if unchecked:
        notes.append(f"not checked for overlap with pre-training data (no record): {', '.join(unchecked)}")
    return "; ".join(notes)


BEST_OVER_EVALS = "_best_over_evals"  # suffix of metrics selected on the test split


def numbers_note(rows: Sequence[dict[str, Any]]) -> str:
    """What the values are: final-epoch numbers, and which rows are not (``*_best_over_evals``)."""
    if not any(str(r["metric"]).endswith(BEST_OVER_EVALS) for r in rows):
        return "final-epoch numbers"
    return (f"final-epoch numbers, except the `*{BEST_OVER_EVALS}` rows: the best of several "
            "evaluations on the test split (selected on the test split, as CMD reports)")


def _order(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _number(value: float | None) -> str:
    if value is None:
        return ERROR_METRIC
    return "nan" if math.isnan(value) else f"{value:.1f}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as one Markdown table, padded so that it also reads well in a terminal.

    Rows: task/metric in the order first met; columns: encoders in the order first met (the
    pre-trained encoder comes first in a bench), values to 1 decimal, ``-`` where an encoder has
    no value, ``!`` after a value whose evaluated samples overlap pre-training; last column: each
    encoder's seconds for the task (on the task's first row).
    """
    encoders = _order(r["encoder"] for r in rows)
    keys = _order((r["task"], r["metric"]) for r in rows)
    value = {(r["task"], r["metric"], r["encoder"]): r["value"] for r in rows}
    marked = {(r["task"], r["metric"], r["encoder"]) for r in rows if _overlaps(r)}
    seconds = {(r["task"], r["encoder"]): r["seconds"] for r in rows}
    header = ["task", "metric", *encoders, f"seconds ({' / '.join(encoders)})"]
    body = []
    previous_task = None
    for task, metric in keys:
        cells = [task if task != previous_task else "", metric]
        cells += [_number(value[task, metric, e]) + (OVERLAP_MARK if (task, metric, e) in marked else "")
                  if (task, metric, e) in value else "-" for e in encoders]
        times = [f"{seconds[task, e]:.1f}" if (task, e) in seconds else "-" for e in encoders]
        cells.append(" / ".join(times) if task != previous_task else "")
        body.append(cells)
        previous_task = task
    return aligned_markdown(header, body, [False, False] + [True] * (len(header) - 2))


def aligned_markdown(header: Sequence[str], body: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    """A Markdown table with padded columns, ``numeric`` ones right-aligned."""
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]

    def fmt(cells: Sequence[str]) -> str:
        columns = zip(cells, widths, numeric, strict=True)
        padded = [str(c).rjust(w) if right else str(c).ljust(w) for c, w, right in columns]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if right else "-" * (w + 2)
                          for w, right in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([fmt(header), rule, *(fmt(cells) for cells in body)]) + "\n"


def write_tables(out_dir: Path, rows: Sequence[dict[str, Any]], caption: str = "",
                 table: Callable[[Sequence[dict[str, Any]]], str] | None = None) -> dict[str, Path]:
    """Write ``results.json``, ``results.csv`` and ``results.md`` (``table`` of the rows, default
    :func:`markdown_table`) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "csv": out_dir / "results.csv", "md": out_dir / "results.md"}
    clean = [{k: r[k] for k in ROW_KEYS} for r in rows]
    _atomic_write(paths["json"], json.dumps(clean, indent=1) + "\n")
    tmp = paths["csv"].with_name(paths["csv"].name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ROW_KEYS)
        writer.writeheader()
        writer.writerows(clean)
    tmp.replace(paths["csv"])
    text = (table or markdown_table)(clean)
    _atomic_write(paths["md"], text + (f"\n{caption}\n" if caption else ""))
    return paths


def read_csv_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``results.csv`` with their types back (value/seconds float, None for a failure's
    value; seed int)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row.update(value=float(row["value"]) if row["value"] != "" else None, seconds=float(row["seconds"]),
                   seed=int(row["seed"]))
    return rows


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
