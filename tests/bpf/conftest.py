"""The BPF live tests' one precondition: root, and a kernel that lets this process load programs."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def bpf_permitted() -> None:
    """Skip (with the kernel's reason) where BPF programs cannot be loaded; use with usefixtures."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    from irqlab.bpf.backend import check_permitted

    reason = check_permitted()
    if reason:
        pytest.skip(reason)
