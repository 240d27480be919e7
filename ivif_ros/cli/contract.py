"""The error contract every ``ivif`` subcommand keeps: bad input gives one line on stderr that
names the file or flag, what is wrong and the fix, and exit code 2; never a traceback.

``check_out`` refuses an unusable ``--out`` before any work starts; ``error_line`` turns the
exceptions that bad input raises (``UserFacingError``, ``OSError``) into that line.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ivif_ros.core.safe_yaml import one_line
from ivif_ros.errors import InputError, UserFacingError

MAX_ERROR_CHARS = 2000

# Subcommands whose --out is one file; every other --out is a folder.
FILE_OUTPUTS = {"export"}


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _writable(folder: Path) -> str | None:
    """Why nothing can be created in ``folder``, or ``None``."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    except OSError:
        pass
    if not os.access(folder, os.W_OK | os.X_OK):
        return "permission denied"
    return None


def check_out(command: str, out, force: bool = False) -> None:
    """Refuse an ``--out`` that cannot work, before the subcommand reads anything."""
    if out is None:
        return
    path = Path(out).expanduser()
    resolved = path.resolve()
    if resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise InputError(
            f"--out {out}: refusing to write {'into' if command not in FILE_OUTPUTS else 'over'} "
            f"{resolved} itself; give a new folder, e.g. --out runs/{command}1"
        )
    if command in FILE_OUTPUTS:
        if path.is_dir():
            raise InputError(f"--out {out} is a folder; give the file to write, e.g. {path / 'student.onnx'}")
        if path.exists() and not force:
            raise InputError(f"--out {out} already exists; pass --force to overwrite it or choose another name")
    elif path.exists() and not path.is_dir():
        raise InputError(f"--out {out} is an existing file, not a folder; give a folder path (it is created)")
    target = path if path.is_dir() else _nearest_existing(path.parent if command in FILE_OUTPUTS else path)
    if target.is_dir():
        why = _writable(target)
        if why:
            raise InputError(f"--out {out}: cannot write in {target}: {why}; choose a writable location")


def _os_error_text(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "a file"
    reason = exc.strerror or str(exc)
    fix = {
        errno.EROFS: "choose a location on a writable file system",
        errno.EACCES: "check the permissions or choose another location",
        errno.EPERM: "check the permissions or choose another location",
        errno.ENOSPC: "free some space or choose another location",
        errno.ENOENT: "check the path",
        errno.EISDIR: "give a file, not a folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
        errno.EEXIST: "remove it or choose another name",
    }.get(exc.errno, "check the path")
    return f"{where}: {reason}; {fix}"


def error_line(command: str, exc: BaseException) -> str:
    """The one stderr line for ``exc``: ``ivif <command>: error: <what>; <fix>``.

    A message's first line is the error; further lines (e.g. the last log lines of a node that
    died) follow indented, so the first line alone still names the problem.
    """
    if isinstance(exc, UserFacingError):
        text = str(exc)
    elif isinstance(exc, OSError):
        text = _os_error_text(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    first, _, rest = text.strip().partition("\n")
    line = f"ivif {command}: error: {one_line(first, MAX_ERROR_CHARS)}"
    if rest.strip():
        line += "\n" + "\n".join("  " + r for r in rest[:MAX_ERROR_CHARS].splitlines())
    return line
