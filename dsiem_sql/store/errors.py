import errno
import os
import pwd
from pathlib import Path


class StoreError(Exception):
    """A database that cannot be used; the message names the file and the reason."""


def cannot_write(path: Path, what: str, exc: OSError) -> StoreError:
    """`PATH: cannot WHAT: reason`; for a refused permission, also which directory (or existing
    file) this process's user may not write, e.g. a bind mount owned by another uid."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        target = Path(exc.filename) if exc.filename else path
        where = f"file {target}" if os.path.exists(target) else f"directory {target.parent}"
        reason += f" ({where} is not writable by {_user()})"
    return StoreError(f"{path}: cannot {what}: {reason}")


def _user() -> str:
    uid = os.geteuid()
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:  # a uid without a passwd entry, e.g. `docker run --user 12345`
        return f"uid {uid}"
