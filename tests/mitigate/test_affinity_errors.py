"""Affinity writes on the live kernel: the managed-IRQ refusal is one clear error (root, live)."""

from __future__ import annotations

import os

import pytest

from irqlab.errors import IrqlabError
from irqlab.mitigate.affinity import AFFINITY_ERRORS, read_affinity, write_affinity
from irqlab.mitigate.discover import root_disk_irqs
from irqlab.sources.fs import Roots


def test_every_documented_errno_has_a_cause_a_user_can_read():
    import errno

    for e in (errno.EPERM, errno.EIO, errno.ENOSPC, errno.EINVAL):
        assert AFFINITY_ERRORS[e]


@pytest.mark.live
@pytest.mark.root
def test_a_managed_root_disk_irq_refuses_a_new_affinity_with_a_clear_message():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    roots = Roots()
    irqs = root_disk_irqs(roots)
    if not irqs:
        pytest.skip("root is not on a local PCI disk here")
    managed = []
    for irq in irqs:
        before = read_affinity(roots, irq)
        try:
            write_affinity(roots, irq, before)  # the same value: harmless if it were accepted
        except IrqlabError as exc:
            managed.append(str(exc))
        assert read_affinity(roots, irq) == before
    if not managed:
        pytest.skip("this machine's root disk IRQs are not managed")
    assert all("managed" in m or "EIO" in m for m in managed)
