"""Writing files atomically: readers see the old file or the new one, never a part."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write ``path`` through ``write(tmp_path)``, then rename the result into place.

    The temporary file is made beside ``path`` (same directory, so the rename is
    atomic), named ``.<name>.<random>.tmp``; missing parent directories are created.
    If ``write`` raises, the temporary file is removed and the exception propagates:
    no target is created and an existing one is left as it was.

    Parameters
    ----------
    path
        The file to write.
    write
        Called once with the temporary file's path (the file exists and is empty);
        it writes the whole content there, by path, e.g. ``lambda tmp: frame.to_csv(tmp)``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
