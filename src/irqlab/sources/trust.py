"""Whether root may obey a file: one rule for every config, budget, web config and exec hook.

Running as root, irqlab refuses a file that a user other than root could have written (owned
by another user, or group- or world-writable): whoever can edit it could otherwise make root
run code or rewrite kernel knobs. It lives in sources/ because it reads the OS (stat), and is
called by the loaders of daemon/ and cli/ (through schema.load_toml's `check`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

FIX = "refusing it while running as root (chown root, chmod go-w)"


def untrusted(st: os.stat_result) -> str | None:
    """Why root should not trust a file, directory or link with this stat, or None.

    A link's own mode means nothing (its directory and target are checked in their turn). A
    root-owned sticky directory (/tmp, 1777) lets no one but an entry's owner rename or remove
    it (unlink(2), EPERM), so its group/other write bits do not make its entries untrusted.
    """
    why = f"owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}"
    if st.st_uid != 0:
        return why
    if stat.S_ISLNK(st.st_mode):
        return None
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return why if writable and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX) else None


def refusal(what: str, why: str) -> str:
    """The one wording of a refusal: '<what> is writable by a user other than root (<why>); ...'."""
    return f"{what} is writable by a user other than root ({why}); {FIX}"


def root_refusal(st: os.stat_result, what: str) -> str | None:
    """As root, why `what` (an open file's stat) is refused; None when not root or when only root can write it."""
    if os.geteuid() != 0:
        return None
    why = untrusted(st)
    return None if why is None else refusal(what, why)


def check_root_owned(path: str | os.PathLike[str], what: str, error: Callable[[str], Exception]) -> None:
    """As root, raise error('PATH: ...') for a file that another user could have written
    (or that cannot be examined); a no-op for other users."""
    if os.geteuid() != 0:
        return
    try:
        st = os.stat(path)
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    why = untrusted(st)
    if why is not None:
        raise error(f"{path}: {refusal(what, why)}")
