"""bpf(2) and perf_event_open(2) through ctypes: maps, program load, tracepoint attach.

Attribute layouts are those of include/uapi/linux/bpf.h (union bpf_attr) and
include/uapi/linux/perf_event.h (struct perf_event_attr), v6.18; unused trailing bytes stay
zero, which the kernel requires. Every fd is opened O_CLOEXEC and owned by the caller: when
the last fd of a program (or of the perf event holding it) closes, the kernel frees it.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

from irqlab.errors import IrqlabError

# x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl); aarch64 uses the generic table.
_NR = {"x86_64": {"bpf": 321, "perf_event_open": 298}, "aarch64": {"bpf": 280, "perf_event_open": 241}}

BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD = 0, 1, 2, 5
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_TYPE_TRACEPOINT = 5
PERF_TYPE_TRACEPOINT = 2
PERF_FLAG_FD_CLOEXEC = 1 << 3
# ioctls: _IO('$', 0) and _IOW('$', 8, __u32) (include/uapi/linux/perf_event.h)
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408
_ATTR_SIZE = 128  # more than every field we set; the kernel checks the tail is zero
LOG_SIZE = 1 << 22


class BpfUnavailable(IrqlabError):
    """BPF cannot be used here (not root, not permitted, or the kernel refused); the reason is the message."""


class VerifierError(BpfUnavailable):
    """The verifier rejected a program; .log holds its log."""

    def __init__(self, name: str, err: str, log: str) -> None:
        tail = "\n".join(log.strip().splitlines()[-25:])
        super().__init__(f"BPF program {name}: the verifier refused it ({err}):\n{tail}")
        self.log = log


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _nr(name: str) -> int:
    arch = platform.machine()
    if arch not in _NR:
        raise BpfUnavailable(f"BPF backend: no syscall table for {arch}")
    return _NR[arch][name]


def _addr(buf: ctypes.Array) -> int:
    return ctypes.addressof(buf)


def bpf(cmd: int, attr: ctypes.Array, what: str) -> int:
    """Call bpf(cmd, attr); an OSError names `what` on failure."""
    ret = _libc.syscall(_nr("bpf"), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({what}): {os.strerror(err)}")
    return int(ret)


def _name16(name: str) -> bytes:
    # Names accept [A-Za-z0-9_.] only, 15 chars + NUL (kernel/bpf/syscall.c bpf_obj_name_cpy).
    return name.encode()[:15]


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, name: str, flags: int = 0) -> int:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIIII", attr, 0, map_type, key_size, value_size, max_entries, flags)
    struct.pack_into("16s", attr, 28, _name16(name))  # after inner_map_fd, numa_node
    try:
        return bpf(BPF_MAP_CREATE, attr, f"MAP_CREATE {name}")
    except OSError as exc:
        raise _unavailable(exc) from None


def _elem_attr(fd: int, key: ctypes.Array, value: ctypes.Array, flags: int = 0) -> ctypes.Array:
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIQQQ", attr, 0, fd, 0, _addr(key), _addr(value), flags)
    return attr


def map_lookup(fd: int, key: ctypes.Array, value: ctypes.Array) -> None:
    """Copy the element `key` into `value` (for per-CPU maps: one slot per possible CPU)."""
    bpf(BPF_MAP_LOOKUP_ELEM, _elem_attr(fd, key, value), "MAP_LOOKUP_ELEM")


def map_update(fd: int, key: ctypes.Array, value: ctypes.Array, flags: int = 0) -> None:
    bpf(BPF_MAP_UPDATE_ELEM, _elem_attr(fd, key, value, flags), "MAP_UPDATE_ELEM")


def prog_load(insns: bytes, name: str, prog_type: int = BPF_PROG_TYPE_TRACEPOINT, license: str = "GPL") -> int:
    """Load a program; on refusal raise VerifierError with the verifier's log."""
    try:
        return _prog_load(insns, name, prog_type, license, 0)
    except OSError as exc:
        if exc.errno == 1 and os.geteuid() != 0:
            raise _unavailable(exc) from None
    # Load again with a log only to explain the refusal (logging slows the verifier down).
    log = ctypes.create_string_buffer(LOG_SIZE)
    try:
        return _prog_load(insns, name, prog_type, license, 1, log)
    except OSError as exc:
        text = log.value.decode(errors="replace")
        if text:
            raise VerifierError(name, os.strerror(exc.errno or 0), text) from None
        raise _unavailable(exc) from None


def _prog_load(insns: bytes, name: str, prog_type: int, license: str, level: int, log: ctypes.Array | None = None) -> int:
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIQQIIQ", attr, 0, prog_type, len(insns) // 8, _addr(code), _addr(lic),
                     level, len(log) if log is not None else 0, _addr(log) if log is not None else 0)
    struct.pack_into("16s", attr, 48, _name16(name))
    return bpf(BPF_PROG_LOAD, attr, f"PROG_LOAD {name}")


def prog_info(fd: int) -> tuple[int, str]:
    """(kernel id, name) of a loaded program (struct bpf_prog_info: id at 4, name at 64)."""
    info = ctypes.create_string_buffer(96)
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIQ", attr, 0, fd, len(info), _addr(info))
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr, "OBJ_GET_INFO_BY_FD")
    ident = struct.unpack_from("<I", info, 4)[0]
    return ident, info.raw[64:80].split(b"\0", 1)[0].decode()


def fdinfo(fd: int) -> dict[str, str]:
    """/proc/self/fdinfo/FD as a dict (prog_id, run_cnt, recursion_misses ... for programs)."""
    out = {}
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
    return out


def perf_tracepoint(tp_id: int, cpu: int = 0) -> int:
    """perf_event_open(PERF_TYPE_TRACEPOINT, config=tp_id) for all tasks; counting, no buffer."""
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<IIQ", attr, 0, PERF_TYPE_TRACEPOINT, _ATTR_SIZE, tp_id)
    ret = _libc.syscall(_nr("perf_event_open"), ctypes.byref(attr), ctypes.c_int(-1), ctypes.c_int(cpu),
                        ctypes.c_int(-1), ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC))
    if ret < 0:
        err = ctypes.get_errno()
        raise _unavailable(OSError(err, f"perf_event_open(tracepoint {tp_id}): {os.strerror(err)}"))
    return int(ret)


_libc.ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong)


def attach(perf_fd: int, prog_fd: int) -> None:
    """PERF_EVENT_IOC_SET_BPF then PERF_EVENT_IOC_ENABLE: the program runs on every CPU's hits.

    A BPF program on a tracepoint perf event is attached to the event's trace_event_call, so it
    runs for all CPUs (include/trace/perf.h, perf_trace_##call checks bpf_prog_array_valid);
    libbpf opens such events on CPU 0 only for that reason.
    """
    for req, arg, what in ((PERF_EVENT_IOC_SET_BPF, prog_fd, "SET_BPF"), (PERF_EVENT_IOC_ENABLE, 0, "ENABLE")):
        if _libc.ioctl(perf_fd, req, arg) < 0:
            err = ctypes.get_errno()
            raise _unavailable(OSError(err, f"ioctl(PERF_EVENT_IOC_{what}): {os.strerror(err)}"))


def _unavailable(exc: OSError) -> BpfUnavailable:
    hint = ""
    if exc.errno in (1, 13):
        hint = " (needs root or CAP_BPF+CAP_PERFMON; see kernel.unprivileged_bpf_disabled)"
    return BpfUnavailable(f"{exc.strerror or exc}{hint}")


BPF_PROG_GET_FD_BY_ID = 13


def prog_loaded(prog_id: int) -> bool:
    """True while the kernel still holds program `prog_id` (BPF_PROG_GET_FD_BY_ID; root only)."""
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<I", attr, 0, prog_id)
    try:
        fd = bpf(BPF_PROG_GET_FD_BY_ID, attr, "PROG_GET_FD_BY_ID")
    except OSError as exc:
        if exc.errno == 2:  # ENOENT: freed
            return False
        raise
    os.close(fd)
    return True


BPF_ENABLE_STATS, BPF_STATS_RUN_TIME = 32, 0


def enable_stats() -> int:
    """An fd that keeps per-program run_time_ns/run_cnt counting on until it is closed.

    The kernel.bpf_stats_enabled sysctl would stay changed if we died; this fd cannot
    (kernel/bpf/syscall.c bpf_enable_runtime_stats, v6.18).
    """
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into("<I", attr, 0, BPF_STATS_RUN_TIME)
    return bpf(BPF_ENABLE_STATS, attr, "ENABLE_STATS")


def close_all(perf_fds: list[int], prog_fds: list[int], maps: dict) -> list[str]:
    """Detach and free a program set: closing the perf fds detaches, closing the last prog/map fd
    frees. Every descriptor is closed even when one fails; the failures are returned, one each."""
    failed = []
    for fd in perf_fds + prog_fds:
        try:
            os.close(fd)
        except OSError as exc:
            failed.append(f"fd {fd}: {exc.strerror or exc}")
    for name, mp in maps.items():
        try:
            mp.close()
        except OSError as exc:
            failed.append(f"map {name}: {exc.strerror or exc}")
    return failed
