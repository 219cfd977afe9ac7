"""One orchestrator per sweep directory: `python -m scaling.sweep` and `scaling.status --resubmit-failed` hold
an exclusive lock on `<out>/.sweep.lock` while they plan and submit, so two of them never submit the same
tasks twice or rewrite sweep.json under each other.

The lock is `fcntl.flock` on an open file, which the kernel releases when its holder exits however it ends:
a lock left by a killed orchestrator is simply free (nothing stale to clean up). The file also names the
holder's pid and host for the message a second orchestrator prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scaling.errors import ConfigError

LOCK = ".sweep.lock"


@contextmanager
def hold(out: Path) -> Iterator[None]:
    """Hold the sweep directory's lock for the block; refuse at once, naming the holder, if another has it."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out}: another sweep is running here ({holder(path)}); wait for it to end") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": platform.node(), "since": time.time()}).encode())
        except OSError as err:  # e.g. a full disk: name the file
            raise OSError(err.errno, err.strerror, str(path)) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def holder(path: Path) -> str:
    """'pid 123 on node7 since 12:01:02', from the lock file (its holder wrote it)."""
    try:
        info = json.loads(path.read_text())
        since = time.strftime("%H:%M:%S", time.localtime(info["since"]))
        return f"pid {info['pid']} on {info['host']} since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
