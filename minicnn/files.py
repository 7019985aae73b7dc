"""Writing files so that a reader never sees half of one: the one atomic write, and JSON.

Every file minicnn writes (model files, checkpoints, metrics, the MNIST cache, plots)
goes through :func:`atomic_write`: the bytes go to a temporary file in the same folder,
which is flushed, fsync'ed and renamed onto the target.  A process killed at any instant
leaves either the old file or the complete new one (and, at worst, a hidden
``.NAME.*.tmp`` file that the next run may delete).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Call ``write(file_object)`` on a temporary file, then move it onto ``path``.

    The rename is atomic on POSIX: readers see either the old file or the complete new
    one, never a partial write, even if the process is killed at any instant.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                             dir=path.parent)
    # mkstemp creates the file owner-only (0600); give it the permissions an ordinary
    # open() would: 0666 less the umask.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    # Persist the rename itself (the directory entry).
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON (with a final newline), atomically."""
    text = json.dumps(data, indent=2) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode()))
