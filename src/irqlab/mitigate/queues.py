"""Per-queue steering knobs of a network device: rx-N/rps_cpus and tx-N/xps_cpus.

Both are hex CPU masks (net/core/net-sysfs.c, v6.18: store_rps_map() parses with
bitmap_parse() and refuses a mask wider than nr_cpumask_bits; xps_cpus_store() likewise).
"0" turns RPS (or XPS) off. The device may live in another network namespace; writing needs
CAP_NET_ADMIN there, and the file is reached from a child that enters it (netns.py).
"""

from __future__ import annotations

import re

from irqlab.cpulist import format_cpulist, format_cpumask, parse_cpumask
from irqlab.errors import IrqlabError, ParseError
from irqlab.mitigate.devfiles import check_device, read_attr, write_attr

QUEUE_ATTR = re.compile(r"queues/(rx-[0-9]{1,5}/rps_cpus|tx-[0-9]{1,5}/xps_cpus)")


def validate_queue(dev: str, attr: str, value: str, online: tuple[int, ...] | None = None,
                   isolated: tuple[int, ...] = ()) -> str:
    """The mask in the kernel's form; with `online`, every CPU must be online and none isolated."""
    check_device(dev)
    if not QUEUE_ATTR.fullmatch(attr):
        raise IrqlabError(f"{attr}: not a queue knob irqlab writes (queues/rx-N/rps_cpus, queues/tx-N/xps_cpus)")
    try:
        cpus = parse_cpumask(value, f"{dev}/{attr}")
    except ParseError as exc:
        raise IrqlabError(f"{dev}/{attr} = {value!r}: not a hex CPU mask ({exc.message})") from None
    if online is not None:
        if set(cpus) - set(online):
            raise IrqlabError(f"{dev}/{attr} = {value!r}: CPU {format_cpulist(set(cpus) - set(online))} not online")
        if set(cpus) & set(isolated):
            raise IrqlabError(f"{dev}/{attr} = {value!r}: CPU {format_cpulist(set(cpus) & set(isolated))} is isolated")
    return format_cpumask(cpus)


def read_queue(netns: str | None, dev: str, attr: str, sysfs: str = "/sys") -> str:
    return read_attr(netns, dev, attr, sysfs)


def write_queue(netns: str | None, dev: str, attr: str, value: str, sysfs: str = "/sys") -> None:
    # As echo writes it: bitmap_parse() ends at the newline (lib/bitmap-str.c end_of_str()).
    write_attr(netns, dev, attr, validate_queue(dev, attr, value) + "\n", sysfs)
