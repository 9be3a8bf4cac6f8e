"""One process per run folder: ``pcm3 pretrain`` and ``pcm3 bench`` lock their ``--out``.

The lock is ``<run folder>/.lock``, held with ``flock`` (the kernel releases it when the process
ends, however it ends) and holding the PID and host of its owner. A second process is refused
with that PID; a lock file left by a process that is gone is taken over with a message. On
systems without ``fcntl`` (Windows) the folder is not locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from pcm3.errors import Pcm3Error

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class RunFolderLockedError(Pcm3Error):
    """Another live process holds the run folder."""


class RunFolderLock:
    """``with RunFolderLock(run_dir): ...`` holds ``run_dir`` for this process.

    ``log`` receives the take-over message (default: stderr). A folder the lock created is
    removed again on release when the run left it empty.
    """

    def __init__(self, run_dir: str | Path, log: Callable[[str], None] = _stderr) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.log = log
        self._fd: int | None = None
        self._created_folder = False

    def acquire(self) -> RunFolderLock:
        if fcntl is None or self._fd is not None:
            return self
        self._created_folder = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(_read_owner(fd))
                os.close(fd)
                raise RunFolderLockedError(
                    f"{self.run_dir} is in use by {holder} (lock {self.path}); wait for it to finish, "
                    f"stop it, or choose another --out") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:  # the previous owner removed it between our open and lock
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_owner(fd)
        if previous.get("pid") not in (None, os.getpid()):
            self.log(f"note: taking over {self.path}: {_describe(previous)} that held it is no longer "
                     "running (it stopped without releasing the run folder)")
        owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner, 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: a waiter re-checks the inode
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._created_folder:  # a run that wrote nothing leaves no folder behind
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read_owner(fd: int) -> dict:
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _describe(owner: dict) -> str:
    if "pid" not in owner:
        return "another process"
    host = owner.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"process {owner['pid']}{where}"
