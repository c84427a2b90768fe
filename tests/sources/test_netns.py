"""Network namespaces: enumeration by /proc/PID/ns/net and /run/netns, reads from inside one (sources/netns.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from irqlab.errors import MissingSource, ParseError, PermissionDenied, SourceError
from irqlab.model.net import RefusedProcess
from irqlab.sources.fs import Roots
from irqlab.sources.netns import NetNamespace, parse_ns_link, read_each_netns, read_in_netns, read_netns
from irqlab.sources.procs import capability_names
from irqlab.sources.sockets import parse_udp
from privilege import as_nobody
from servers import missing_tool

NET = Path(__file__).resolve().parent.parent / "fixtures" / "net"


def test_processes_grouped_by_namespace_with_the_lowest_pid_and_a_few_comms(tmp_path: Path) -> None:
    found = read_netns(Roots(NET / "proc-owners", NET / "sys-mq"), run_dir=tmp_path / "no-run-netns")
    proc = str(NET / "proc-owners")
    assert found.denied == 0
    assert [(n.inode, n.pid, n.nprocs, n.comms, n.names, n.ns_path) for n in found.namespaces] == [
        (4026531833, 100, 2, ("dnsmasq", "iperf3"), (), f"{proc}/100/ns/net"),
        (4026532301, 300, 4, ("nginx", "nginx", "sh"), (), f"{proc}/300/ns/net"),  # pid 400 has no ns/: exited
    ]


def test_named_namespaces_match_by_inode_and_one_without_processes_is_listed(tmp_path: Path) -> None:
    run = tmp_path / "run-netns"
    run.mkdir()
    (run / "blue").touch()
    (run / "red").touch()
    proc = tmp_path / "proc"
    for pid, target in ((10, f"net:[{(run / 'blue').stat().st_ino}]"), (11, "net:[4026531833]")):
        (proc / str(pid) / "ns").mkdir(parents=True)
        (proc / str(pid) / "ns" / "net").symlink_to(target)
        (proc / str(pid) / "comm").write_text(f"p{pid}\n")
    found = read_netns(Roots(proc, tmp_path / "sys"), run_dir=run)
    assert [(n.pid, n.names, n.comms, n.ns_path) for n in found.namespaces] == [
        (10, ("blue",), ("p10",), str(run / "blue")),  # named: entered by its name, not a PID that may exit
        (11, (), ("p11",), f"{proc}/11/ns/net"),
        (None, ("red",), (), str(run / "red")),  # `ip netns add` alone: no process in it
    ]


def test_malformed_ns_link_gives_one_parse_error_with_file_line_and_token(tmp_path: Path) -> None:
    path = str(NET / "proc-netns-bad" / "5" / "ns" / "net")
    with pytest.raises(ParseError) as err:
        read_netns(Roots(NET / "proc-netns-bad", tmp_path), run_dir=tmp_path)
    assert (err.value.path, err.value.line, err.value.token) == (path, 1, "net:[40265x1833]")
    assert parse_ns_link("net:[4026531840]\n", "x") == 4026531840


def test_a_process_reaped_between_listing_and_readlink_is_not_counted_as_denied(tmp_path: Path, monkeypatch) -> None:
    # The kernel answers EACCES for the ns link of a task already gone (proc_ns_readlink():
    # get_proc_task() is NULL), as for a refused check: counted, a short-lived process would
    # read as "refused even to root". Process 100 is gone by its readlink; 300's link is
    # refused while it is still there.
    proc = tmp_path / "proc"
    shutil.copytree(NET / "proc-owners", proc, symlinks=True)
    real = os.readlink

    def readlink(path, *a, **kw):
        pid = Path(path).parent.parent.name
        if pid == "100":
            shutil.rmtree(proc / "100")
        if pid in ("100", "300"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *a, **kw)

    monkeypatch.setattr(os, "readlink", readlink)
    # Who was refused, and why. The reader lacks CAP_SYS_PTRACE (19), CAP_SYS_RESOURCE (24) and
    # CAP_BPF (39), which the process holds: the capability check refused, for those.
    (proc / "300" / "status").write_text("Name:\tnginx\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n")
    (proc / "self").mkdir()
    (proc / "self" / "status").write_text(f"Name:\tirqlab\nCapEff:\t{0x1ffffffffff & ~(1 << 19 | 1 << 24 | 1 << 39):016x}\n")
    found = read_netns(Roots(proc, tmp_path / "sys"), run_dir=tmp_path / "none")
    assert found.denied == 1
    assert found.refused == (RefusedProcess(300, "nginx", ("CAP_SYS_PTRACE", "CAP_SYS_RESOURCE", "CAP_BPF")),)
    assert [(n.inode, n.pid) for n in found.namespaces] == [(4026531833, 200), (4026532301, 301)]
    # With CAP_SYS_PTRACE the capability check passes whatever the process holds (this VM: pid 1
    # holds CAP_SYS_RESOURCE, which this root lacks, and is refused all the same): not capabilities.
    (proc / "self" / "status").write_text(f"Name:\tirqlab\nCapEff:\t{0x1ffffffffff & ~(1 << 24):016x}\n")
    found = read_netns(Roots(proc, tmp_path / "sys"), run_dir=tmp_path / "none")
    assert found.refused == (RefusedProcess(300, "nginx", ()),)


def test_a_refused_process_whose_capabilities_cannot_be_read_is_still_named(tmp_path: Path, monkeypatch) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(NET / "proc-owners", proc, symlinks=True)
    real = os.readlink

    def readlink(path, *a, **kw):
        if "/300/" in str(path):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *a, **kw)

    monkeypatch.setattr(os, "readlink", readlink)
    found = read_netns(Roots(proc, tmp_path / "sys"), run_dir=tmp_path / "none")
    assert found.refused == (RefusedProcess(300, "nginx", None),)  # no status files: reasons unknown
    assert capability_names(1 << 41 | 1 << 24 | 1) == ("CAP_CHOWN", "CAP_SYS_RESOURCE", "cap_41")  # newer than the table


def test_another_users_ns_links_are_counted_as_denied_not_raised() -> None:
    root = tempfile.mkdtemp(prefix="irqlab-t-netns-")
    try:
        shutil.copytree(NET / "proc-owners", root, symlinks=True, dirs_exist_ok=True)
        for d in [root, *(os.path.join(dp, n) for dp, dns, _ in os.walk(root) for n in dns)]:
            os.chmod(d, 0o755)
        for pid in ("100", "300"):
            os.chmod(os.path.join(root, pid, "ns"), 0o700 if os.geteuid() == 0 else 0o000)

        def scan() -> tuple[int, list[tuple[int, int | None]]]:
            found = read_netns(Roots(Path(root), Path(root)), run_dir=Path(root) / "none")
            return found.denied, [(n.inode, n.pid) for n in found.namespaces]

        denied, spaces = as_nobody(scan)
        assert denied == 2
        assert spaces == [(4026531833, 200), (4026532301, 301)]
    finally:
        for pid in ("100", "300"):
            os.chmod(os.path.join(root, pid, "ns"), 0o700)
        shutil.rmtree(root)


def _space(path: Path) -> NetNamespace:
    inode = path.stat().st_ino if path.exists() else 1
    return NetNamespace(inode=inode, pid=None, nprocs=0, comms=(), names=(), ns_path=str(path))


def test_namespaces_that_cannot_be_entered_are_listed_plainly_not_raised(tmp_path: Path) -> None:
    not_ns = tmp_path / "not-a-namespace"
    not_ns.write_text("")
    gone = tmp_path / "gone"
    reads = read_each_netns([_space(not_ns), _space(gone)], ["/proc/net/udp"])
    assert reads.files == {}
    (e1, e2) = [err for _, err in reads.not_entered]
    assert [s.ns_path for s, _ in reads.not_entered] == [str(not_ns), str(gone)]
    assert type(e2) is MissingSource and str(e2) == f"{gone}: namespace gone (its last process exited)"
    # setns() on a file that is no namespace: EINVAL as root; unprivileged, EPERM comes first.
    assert isinstance(e1, SourceError) and str(e1).startswith(f"{not_ns}: cannot enter this network namespace: ")


def test_a_namespace_file_of_another_inode_than_enumerated_is_gone_not_entered(tmp_path: Path) -> None:
    # The PID that stood for a namespace exited and was reused by a process of another one.
    other = tmp_path / "reused"
    other.write_text("")
    with pytest.raises(MissingSource, match="namespace gone"):
        read_in_netns(str(other), ["/proc/net/udp"], expect_inode=other.stat().st_ino + 1)


def test_unprivileged_enter_is_permission_denied_in_one_line() -> None:
    fd, path = tempfile.mkstemp(prefix="irqlab-t-ns-")
    os.close(fd)
    os.chmod(path, 0o600)  # root's, as /proc/1/ns/net is to another user
    try:
        def enter() -> tuple[str, str]:
            try:
                read_in_netns(path, ["/proc/net/udp"])
            except SourceError as exc:
                return type(exc).__name__, str(exc)
            return "entered", ""

        kind, message = as_nobody(enter)
        if os.geteuid() == 0:
            assert kind == PermissionDenied.__name__
            assert message == f"{path}: cannot enter this network namespace: Permission denied (needs CAP_SYS_ADMIN)"
        else:  # our own file: opened, then setns() refuses an unprivileged caller
            assert kind in (PermissionDenied.__name__, SourceError.__name__) and "cannot enter" in message
    finally:
        os.unlink(path)


BIND_AND_WAIT = """
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1], os.fstat(s.fileno()).st_ino, flush=True)
sys.stdin.read()
"""


@pytest.mark.live
@pytest.mark.root
def test_two_fresh_namespaces_are_enumerated_and_read_from_inside() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (ip netns add)")
    if shutil.which("ip") is None:
        missing_tool("ip (iproute2)")
    a, b = f"irqlab-t-{os.getpid()}-a", f"irqlab-t-{os.getpid()}-b"
    child: subprocess.Popen[str] | None = None
    made: list[str] = []
    try:
        for name in (a, b):
            subprocess.run(["ip", "netns", "add", name], check=True)
            made.append(name)
        child = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-c", BIND_AND_WAIT],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        port, sock_inode = map(int, child.stdout.readline().split())

        spaces = {n.inode: n for n in read_netns(Roots()).namespaces}
        ino_a, ino_b = (os.stat(f"/run/netns/{n}").st_ino for n in (a, b))
        assert (spaces[ino_a].pid, spaces[ino_a].nprocs, spaces[ino_a].names) == (child.pid, 1, (a,))
        assert (spaces[ino_b].pid, spaces[ino_b].names, spaces[ino_b].ns_path) == (None, (b,), f"/run/netns/{b}")
        host = os.stat("/proc/self/ns/net").st_ino
        assert spaces[host].nprocs > 1 and ino_a != host

        paths = ["/proc/net/udp", "/sys/class/net", "/sys/class/net/lo/statistics/rx_packets", "/proc/net/no-such-file"]
        by_pid = read_in_netns(child.pid, paths)
        sockets = parse_udp(by_pid["/proc/net/udp"].decode(), "udp")
        assert [(s.local_port, s.inode) for s in sockets] == [(port, sock_inode)]
        assert by_pid["/sys/class/net"] == b"lo"  # that namespace's sysfs: no eth0
        assert by_pid["/sys/class/net/lo/statistics/rx_packets"] == b"0\n"
        assert isinstance(by_pid["/proc/net/no-such-file"], MissingSource)

        reads = read_each_netns([spaces[ino_a], spaces[ino_b]], paths[:2])
        assert reads.not_entered == ()
        in_a = parse_udp(reads.files[ino_a]["/proc/net/udp"].decode())
        assert [(s.local_port, s.inode) for s in in_a] == [(port, sock_inode)]
        assert parse_udp(reads.files[ino_b]["/proc/net/udp"].decode()) == ()
        assert reads.files[ino_b]["/sys/class/net"] == b"lo"
        # The caller never left its namespace: it still sees the host's devices.
        assert os.stat("/proc/self/ns/net").st_ino == host and set(os.listdir("/sys/class/net")) != {"lo"}
    finally:
        if child is not None:
            child.kill()
            child.wait(timeout=10)
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)
    assert not any(n.startswith(f"irqlab-t-{os.getpid()}-") for n in os.listdir("/run/netns"))
