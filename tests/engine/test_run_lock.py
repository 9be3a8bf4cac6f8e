"""The run-folder lock: a live holder refuses others with its PID, a dead one's lock is taken over."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pcm3.engine.run_lock import LOCK_NAME, RunFolderLock, RunFolderLockedError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="run-folder locks need fcntl")

# a process holding a run folder's lock the way RunFolderLock does (stdlib only: starts fast)
HOLDER = textwrap.dedent("""
    import fcntl, json, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, json.dumps({"pid": os.getpid()}).encode())
    print("locked", flush=True)
    sys.stdin.read()
""")


def dead_pid() -> int:
    """The PID of a process that has finished."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(done.stdout)


def write_stale_lock(run_dir, pid: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": os.uname().nodename}))


def test_a_second_process_is_refused_with_the_pid_of_the_holder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run / LOCK_NAME)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderLockedError, match=rf"{run} is in use by process {holder.pid} "):
            RunFolderLock(run).acquire()
    finally:
        holder.communicate("")  # the holder exits; the kernel releases its lock
    messages = []
    with RunFolderLock(run, log=messages.append):  # the lock file it left is taken over
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"process {holder.pid} that held it is no longer running" in messages[0]


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_message(tmp_path):
    run = tmp_path / "run"
    pid = dead_pid()
    write_stale_lock(run, pid)
    messages = []
    lock = RunFolderLock(run, log=messages.append).acquire()
    try:
        assert len(messages) == 1 and f"taking over {run / LOCK_NAME}: process {pid}" in messages[0]
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        lock.release()


def test_release_removes_the_lock_and_an_empty_folder_it_created(tmp_path):
    run = tmp_path / "new" / "run"
    with RunFolderLock(run):
        assert (run / LOCK_NAME).exists()
    assert not run.exists()  # nothing was written: no folder left behind
    with RunFolderLock(run):
        (run / "metrics.jsonl").write_text("{}\n")
    assert run.is_dir() and not (run / LOCK_NAME).exists()
    messages = []
    with RunFolderLock(run, log=messages.append):  # a cleanly released folder: no take-over message
        pass
    assert messages == []


def test_the_same_folder_is_refused_within_one_process_too(tmp_path):
    with RunFolderLock(tmp_path / "run"):
        with pytest.raises(RunFolderLockedError, match=f"process {os.getpid()}"):
            RunFolderLock(tmp_path / "run").acquire()
