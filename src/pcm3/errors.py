"""The project's error types: bad input and bad usage, reported as one clear line."""

from __future__ import annotations

from pathlib import Path


class Pcm3Error(Exception):
    """Bad usage or bad input. The CLI prints ``error: <message>`` and exits with code 2."""


class Pcm3Warning(UserWarning):
    """Something the user should know that does not stop the work (``warning: ...`` on the CLI)."""


class ConfigError(Pcm3Error):
    """A configuration key, value or type that is not allowed."""


class DataError(Pcm3Error):
    """A data file that cannot be read as what it claims to be.

    The message always names the file, and where known the sample and the line, then what
    is wrong and what was expected.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        sample: str | None = None,
        line: int | None = None,
    ) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        self.sample = sample
        self.line = line
        where = []
        if self.path is not None:
            where.append(self.path + (f":{line}" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if sample is not None:
            where.append(f"sample {sample!r}")
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)
