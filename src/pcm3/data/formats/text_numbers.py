"""Whitespace-separated numeric text, split once and parsed in bulk, with line-numbered errors.

Shared by the text readers (``ntu-raw``, ``pku-mmd``). A file is read as bytes and split
into ASCII-whitespace tokens, all converted to float64 in one NumPy call. Lines are
``\\n``-separated (a ``\\r`` before it is whitespace, so CRLF and LF read the same); the
number of tokens on each line is computed vectorised from the raw bytes, so per-line
structure ("every joint line has 12 numbers") is checked without a Python loop over lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcm3.errors import DataError

# bytes.split() splits on exactly these (ASCII whitespace)
_IS_SPACE = np.zeros(256, dtype=bool)
_IS_SPACE[[ord(c) for c in " \t\n\r\x0b\x0c"]] = True


@dataclass
class NumericText:
    """A text file of ``L`` lines of numbers.

    ``counts (L,)``: tokens per line; ``first (L,)``: index in ``values`` of each line's first
    token; ``values (sum(counts),)``: every token as float64, in file order; ``last_line``:
    0-based index of the last line holding a token; ``starts (L,)``: byte offset of each line.
    """

    path: Path
    data: bytes
    starts: np.ndarray
    counts: np.ndarray
    first: np.ndarray
    values: np.ndarray
    last_line: int

    def line(self, index: int) -> bytes:
        """The raw bytes of 0-based line ``index`` (without its ``\\n``)."""
        end = self.starts[index + 1] - 1 if index + 1 < len(self.starts) else len(self.data)
        return self.data[self.starts[index] : end]

    def line_of_token(self, index: int) -> int:
        """0-based line holding token ``index``."""
        return int(np.searchsorted(self.first + self.counts, index, side="right"))

    def expect_count(self, line: int, expected: int, what: str) -> None:
        """DataError unless 0-based ``line`` exists and holds ``expected`` tokens."""
        if line > self.last_line:
            raise DataError(
                f"file is truncated: it ends before line {line + 1}, expected {what}",
                path=self.path,
            )
        if self.counts[line] != expected:
            raise DataError(
                f"expected {what} ({expected} numbers on the line), found "
                f"{int(self.counts[line])} numbers",
                path=self.path,
                line=line + 1,
            )

    def integer(self, line: int, what: str) -> int:
        """The single non-negative integer on 0-based ``line`` (a count), else a DataError."""
        self.expect_count(line, 1, what)
        value = self.values[self.first[line]]
        if not (np.isfinite(value) and value >= 0 and value == int(value)):
            text = self.line(line).decode("ascii", "replace").strip()[:60]
            raise DataError(
                f"expected {what} (one non-negative integer), got {text!r}",
                path=self.path,
                line=line + 1,
            )
        return int(value)

    def require_counts(self, lines: np.ndarray, expected: int, what: str) -> None:
        """DataError at the first of ``lines`` (0-based indices) without ``expected`` tokens."""
        bad = np.flatnonzero(self.counts[lines].ravel() != expected)
        if bad.size:
            line = int(lines.ravel()[bad[0]])
            raise DataError(
                f"{int(self.counts[line])} numbers on a {what} line, expected {expected}",
                path=self.path,
                line=line + 1,
            )

    def require_finite(self, token_index: np.ndarray, what: str) -> None:
        """DataError at the line of the first non-finite value among ``values[token_index]``."""
        bad = np.flatnonzero(~np.isfinite(self.values[token_index].ravel()))
        if bad.size:
            line = self.line_of_token(int(token_index.ravel()[bad[0]]))
            raise DataError(f"NaN or inf {what}", path=self.path, line=line + 1)


def line_token_counts(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, counts)``, both ``(L,)`` with ``L = data.count(b"\\n") + 1``: the byte offset
    of each ``\\n``-separated line and its number of whitespace-separated tokens."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newline_at = np.flatnonzero(buf == ord("\n"))
    starts = np.concatenate(([0], newline_at + 1))
    if buf.size == 0:
        return starts, np.zeros(1, dtype=np.int64)
    space = _IS_SPACE[buf]
    token_start = np.flatnonzero(~space & np.concatenate(([True], space[:-1])))
    line_of_start = np.searchsorted(newline_at, token_start)
    return starts, np.bincount(line_of_start, minlength=starts.size).astype(np.int64)


def parse_numeric_text(path: Path, data: bytes | None = None) -> NumericText:
    """Read ``path`` (or use ``data``) as numbers; a non-numeric token is a DataError naming
    its line. An empty file (no token at all) is a DataError."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read file: {exc.strerror or exc}", path=path) from exc
    tokens = data.split()
    if not tokens:
        raise DataError("empty file (no numbers)", path=path)
    starts, counts = line_token_counts(data)
    first = np.cumsum(counts) - counts
    try:
        values = np.array(tokens, dtype=np.float64)
    except (ValueError, OverflowError):
        index = _first_bad_token(tokens)
        line = int(np.searchsorted(first + counts, index, side="right"))
        text = tokens[index].decode("utf-8", "replace")[:40]
        raise DataError(f"{text!r} is not a number", path=path, line=line + 1) from None
    last_line = int(np.flatnonzero(counts)[-1])
    return NumericText(path, data, starts, counts, first, values, last_line)


def _first_bad_token(tokens: list[bytes]) -> int:
    """Index of the first token ``float()`` rejects (only called on the error path)."""
    for i, token in enumerate(tokens):
        try:
            float(token)
        except ValueError:
            return i
    return len(tokens) - 1
