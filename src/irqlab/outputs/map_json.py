"""`irqlab map --json`: the interrupt map as one JSON document (schema in docs/map.md)."""

from __future__ import annotations

import json
from typing import Any

from irqlab.analysis.irqmap import IrqMap, IrqRow, NapiRow, NetDeviceMap
from irqlab.cpulist import format_cpulist

SCHEMA = 1


def _cpus(cpus: tuple[int, ...] | None) -> str | None:
    return None if cpus is None else format_cpulist(cpus)


def _row(r: IrqRow) -> dict[str, Any]:
    return {
        "irq": r.irq, "actions": list(r.actions), "device": r.device, "driver": r.driver,
        "netdev": r.netdev, "role": r.role, "queue": r.queue, "device_node": r.device_node,
        "affinity": _cpus(r.affinity), "effective_affinity": _cpus(r.effective_affinity),
        "affinity_nodes": list(r.affinity_nodes), "effective_nodes": list(r.effective_nodes),
        "movable": r.movable, "why": r.why, "napi_id": r.napi_id, "napi_thread": r.napi_thread,
    }


def _napi(r: NapiRow) -> dict[str, Any]:
    n, th = r.napi, r.thread
    return {
        "id": n.id, "irq": n.irq, "pid": n.pid, "threaded": n.threaded, "defer_hard_irqs": n.defer_hard_irqs,
        "gro_flush_timeout_ns": n.gro_flush_timeout_ns, "irq_suspend_timeout_ns": n.irq_suspend_timeout_ns,
        "thread": None if th is None else {"comm": th.comm, "cpu": th.last_cpu, "policy": th.policy,
                                           "rt_priority": th.rt_priority, "allowed_cpus": _cpus(th.allowed_cpus)},
    }


def _netdev(n: NetDeviceMap) -> dict[str, Any]:
    d = n.device
    return {
        "namespace": n.namespace, "name": d.name, "device": n.pci, "driver": d.driver,
        "numa_node": d.numa_node, "threaded": d.threaded, "irqs": list(n.irqs),
        "rx_queues": [{"index": q.index, "rps_cpus": _cpus(q.rps_cpus), "rps_flow_cnt": q.rps_flow_cnt} for q in d.rx_queues],
        "tx_queues": [{"index": q.index, "xps_cpus": _cpus(q.xps_cpus)} for q in d.tx_queues],
        "napis": [_napi(r) for r in n.napis],
    }


def map_document(m: IrqMap, notes: list[str] | None = None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "online_cpus": _cpus(m.online),
        "nodes": {str(k): format_cpulist(v) for k, v in m.nodes.items()},
        "irqs": [_row(r) for r in m.rows],
        "netdevs": [_netdev(n) for n in m.netdevs],
        "notes": list(notes or []),
    }


def render_map_json(m: IrqMap, notes: list[str] | None = None) -> str:
    return json.dumps(map_document(m, notes), indent=1) + "\n"
