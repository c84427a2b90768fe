"""Whether root may obey a file: one rule (owner root, no group/world write; sticky dirs and
links excepted) and one wording for every root-run loader."""

from __future__ import annotations

import os
import stat

import pytest
from tests.privilege import as_nobody

from irqlab.sources.trust import check_root_owned, root_refusal, untrusted


def st(mode: int, uid: int = 0) -> os.stat_result:
    return os.stat_result((mode, 1, 1, 1, uid, 0, 0, 0, 0, 0))


@pytest.mark.parametrize("mode, uid, why", [
    (stat.S_IFREG | 0o644, 0, None),
    (stat.S_IFREG | 0o664, 0, "owner uid 0, mode 0664"),
    (stat.S_IFREG | 0o646, 0, "owner uid 0, mode 0646"),
    (stat.S_IFREG | 0o600, 65534, "owner uid 65534, mode 0600"),
    (stat.S_IFDIR | 0o1777, 0, None),  # /tmp: others may write, but not replace root's entries
    (stat.S_IFDIR | 0o777, 0, "owner uid 0, mode 0777"),
    (stat.S_IFLNK | 0o777, 0, None),  # a link's mode means nothing
    (stat.S_IFLNK | 0o777, 1000, "owner uid 1000, mode 0777"),
])
def test_untrusted_names_the_owner_and_mode_that_let_another_user_write(mode, uid, why):
    assert untrusted(st(mode, uid)) == why


class Refused(Exception):
    pass


def test_only_root_refuses_a_file_others_may_write(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("")
    os.chmod(path, 0o666)
    st_ = os.stat(path)
    assert as_nobody(lambda: root_refusal(st_, "config file")) is None
    assert as_nobody(lambda: check_root_owned(path, "config file", Refused)) is None  # a no-op for other users
    if os.geteuid() == 0:
        assert root_refusal(os.stat(path), "config file") == (
            "config file is writable by a user other than root (owner uid 0, mode 0666); "
            "refusing it while running as root (chown root, chmod go-w)")
        with pytest.raises(Refused, match=r"c\.toml: config file is writable by a user other than root"):
            check_root_owned(path, "config file", Refused)


@pytest.mark.root
def test_as_root_a_file_that_cannot_be_examined_is_one_error_not_an_oserror(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the ownership rule applies to root")
    with pytest.raises(Refused, match=r"nope\.pem: cannot read TLS key_file: No such file"):
        check_root_owned(tmp_path / "nope.pem", "TLS key_file", Refused)
