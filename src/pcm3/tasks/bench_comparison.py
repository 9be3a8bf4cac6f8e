"""The comparison table of a bench over several encoders (``encoders:``), shaped like a survey's
table: a row per encoder (the entries, then the references), a column group per task.

Markdown has one header row, so the task names head the first column of their group and the
first body row names the metrics. A failed task reads ``error``; the last column, ``error``,
holds each encoder's failures (``<task>: <exception>``), and ``seconds`` the encoder's total
task time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pcm3.tasks.bench_table import ERROR_METRIC, OVERLAP_MARK, _number, _order, _overlaps, aligned_markdown


def comparison_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows (``bench_table`` rows, failures included) as one Markdown table, padded."""
    encoders = _order(r["encoder"] for r in rows)
    tasks = _order(r["task"] for r in rows if r["metric"] != ERROR_METRIC)
    columns = [(t, m) for t in tasks for m in _order(r["metric"] for r in rows
                                                        if r["task"] == t and r["metric"] != ERROR_METRIC)]
    value = {(r["encoder"], r["task"], r["metric"]): r["value"] for r in rows}
    marked = {(r["encoder"], r["task"], r["metric"]) for r in rows if _overlaps(r)}
    failed = {(r["encoder"], r["task"]): r["error"] for r in rows if r["metric"] == ERROR_METRIC}
    seconds: dict[str, dict[str, float]] = {}
    for r in rows:
        seconds.setdefault(r["encoder"], {})[r["task"]] = float(r["seconds"])
    header = ["encoder", *(t if i == 0 or columns[i - 1][0] != t else "" for i, (t, _) in enumerate(columns)),
              "seconds", *(["error"] if failed else [])]
    body = [["", *(m for _, m in columns), "", *([""] if failed else [])]]
    for e in encoders:
        cells = [e]
        for t, m in columns:
            if (e, t, m) in value:
                cells.append(_number(value[e, t, m]) + (OVERLAP_MARK if (e, t, m) in marked else ""))
            else:
                cells.append(ERROR_METRIC if (e, t) in failed or (e, "pretrain") in failed else "-")
        cells.append(f"{sum(seconds.get(e, {}).values()):.1f}")
        if failed:
            cells.append("; ".join(f"{t}: {msg}" for (fe, t), msg in failed.items() if fe == e))
        body.append([c.replace("|", "/").replace("\n", " ") for c in cells])
    return aligned_markdown(header, body, [False] + [True] * (len(columns) + 1) + ([False] if failed else []))
