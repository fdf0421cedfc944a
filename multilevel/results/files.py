"""Writing files atomically: readers see the old file or the new one, never a part."""

from __future__ import annotations

import os
import secrets
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

    Notes
    -----
    The file gets the permissions of any new file (``0o666`` less the umask), not the
    owner-only ``0o600`` of :func:`tempfile.mkstemp`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file(path.parent, f".{path.name}.", ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _new_file(directory: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file of a new random name in ``directory``, with the umask's permissions."""
    for _ in range(100):
        candidate = directory / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name for {prefix}...{suffix} in {directory}")
