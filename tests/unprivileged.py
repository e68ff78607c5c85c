"""Run a check as an ordinary user, so that read-only folders mean something.

Root writes into any folder, and the test machines (CI included) run as root: there a check
runs in a forked child that has dropped to the `nobody` user (uid/gid 65534), on files in a
world-readable temporary folder. Elsewhere it simply runs in this process.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import traceback
from pathlib import Path
from typing import Callable, Iterator

NOBODY = 65534


@contextlib.contextmanager
def shared_folder() -> Iterator[Path]:
    """A temporary folder that an unprivileged user can read (and write: mode 0777)."""
    folder = Path(tempfile.mkdtemp(prefix="nuwa-unpriv-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o777)  # read-only folders made by the check must not block the clean-up
        shutil.rmtree(folder)


def run_unprivileged(check: Callable[[], None]) -> None:
    """Run `check` without root's rights; its assertion errors fail the calling test."""
    if os.geteuid() != 0:
        check()
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, run, report through the pipe, never return into pytest
        os.close(read_end)
        status = 0
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            check()
        except BaseException:
            os.write(write_end, traceback.format_exc().encode())
            status = 1
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"the unprivileged check failed:\n{report}"
