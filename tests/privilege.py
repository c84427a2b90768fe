"""Run a piece of a test as an unprivileged user, so permission checks are tested as root too."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from typing import Any

NOBODY = 65534


def as_nobody(fn: Callable[[], Any]) -> Any:
    """fn() run as `nobody` (in a forked child when we are root); its result, which must be
    a literal that repr() and ast.literal_eval() carry across the pipe."""
    if os.geteuid() != 0:
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(w, repr(fn()).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return ast.literal_eval(text)
