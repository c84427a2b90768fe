"""Run a small function inside a named network namespace, with that namespace's /sys.

/sys/class/net lists only the devices of the reader's network namespace, and sysfs shows
the namespace that was current when it was mounted (fs/sysfs/mount.c, v6.18: the mount is
tagged with the mounter's netns). So, as `ip netns exec` does (iproute2 lib/namespace.c,
netns_switch()), a forked child joins the namespace with setns(2), takes a private mount
namespace with unshare(CLONE_NEWNS), and mounts a fresh sysfs on /sys. The parent never
changes namespace. Python 3.11 has no os.setns, hence ctypes.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from irqlab.errors import IrqlabError
from irqlab.sources.netns import NETNS_RUN_DIR, private_sysfs, setns_net

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class NetnsError(IrqlabError):
    """A network namespace could not be entered."""


def list_netns(run_dir: Path = NETNS_RUN_DIR) -> list[str]:
    """Names of the namespaces `ip netns` knows; [] when there are none."""
    try:
        return sorted(n for n in os.listdir(run_dir) if _NAME.match(n))
    except OSError:
        return []


def _enter(name: str, run_dir: Path) -> None:
    """The same way in as the sources' readers of other namespaces (sources/netns.py)."""
    fd = os.open(run_dir / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns_net(fd)
    finally:
        os.close(fd)
    private_sysfs()


def run_in_netns(name: str | None, fn: Callable[..., Any], *args: Any, run_dir: Path = NETNS_RUN_DIR) -> Any:
    """fn(*args) inside namespace `name` (None: here); its result must be JSON-able.

    An OSError raised by fn inside the namespace is raised again here with the same errno,
    so callers handle EPERM/EINVAL alike for both cases.
    """
    if name is None:
        return fn(*args)
    if not _NAME.match(name) or not (run_dir / name).exists():
        raise NetnsError(f"network namespace {name!r}: not found under {run_dir}")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(r)
        try:
            _enter(name, run_dir)
            out = {"ok": fn(*args)}
        except OSError as exc:
            out = {"errno": exc.errno or errno.EIO, "msg": exc.strerror or str(exc), "file": exc.filename and str(exc.filename)}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, never raised here
            out = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as f:
        chunks.append(f.read())
    os.waitpid(pid, 0)
    try:
        out = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        out = {}
    if "ok" in out:
        return out["ok"]
    if "errno" in out:
        raise OSError(out["errno"], out["msg"], out.get("file"))
    raise NetnsError(f"network namespace {name!r}: {out.get('error', 'child failed')}")
