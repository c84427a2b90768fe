"""Actions as commands for this machine: sysctl, sysfs in a namespace (named or not), IRQ and task affinity, each with its undo."""

from __future__ import annotations

from netbuilders import HOST, netns

from irqlab.analysis.actions import irq_affinity_action, rps_action, sysctl_action, task_affinity_action, threaded_napi_action


def test_a_sysctl_is_written_with_sysctl_and_undone_with_its_old_value():
    a = sysctl_action("net.core.netdev_budget", 2, 300, "why", "effect")
    assert a.path == "/proc/sys/net/core/netdev_budget"
    assert (a.command, a.undo) == ("sysctl -w net.core.netdev_budget=300", "sysctl -w net.core.netdev_budget=2")


def test_rps_on_the_host_is_an_echo_of_a_hex_mask():
    a = rps_action(HOST, "eth0", 3, (), (1, 2, 3), "why", "effect")
    assert a.namespace is None
    assert (a.command, a.undo) == ("echo e > /sys/class/net/eth0/queues/rx-3/rps_cpus", "echo 0 > /sys/class/net/eth0/queues/rx-3/rps_cpus")


def test_rps_masks_of_more_than_32_cpus_are_comma_grouped():
    a = rps_action(HOST, "eth0", 0, (0,), (33,), "why", "effect")
    assert a.new == "2,00000000" and a.old == "0,00000001"


def test_a_named_namespace_is_entered_with_ip_netns_exec():
    a = rps_action(netns("srv", 1, 812), "veth1", 0, (0,), (1,), "why", "effect")
    assert a.command == "ip netns exec srv sh -c 'echo 2 > /sys/class/net/veth1/queues/rx-0/rps_cpus'"


def test_an_unnamed_namespace_is_entered_with_nsenter_and_a_fresh_sysfs():
    a = threaded_napi_action(netns(None, 1, 812), "veth1", 0, "why", "effect")
    assert a.command == "nsenter -t 812 -n unshare -m sh -c 'mount -t sysfs sysfs /sys && echo 1 > /sys/class/net/veth1/threaded'"
    assert a.undo.endswith("echo 0 > /sys/class/net/veth1/threaded'")


def test_irq_and_task_affinity():
    irq = irq_affinity_action("38", (0,), (1, 2, 3), "why", "effect")
    assert (irq.command, irq.undo) == ("echo 1-3 > /proc/irq/38/smp_affinity_list", "echo 0 > /proc/irq/38/smp_affinity_list")
    task = task_affinity_action(950, (0, 1), (1,), "why", "effect")
    assert (task.command, task.undo) == ("taskset -pc 1 950", "taskset -pc 0-1 950")


def test_a_device_name_with_shell_characters_is_quoted_not_run():
    a = rps_action(HOST, "a;reboot", 0, (), (1,), "why", "effect")
    assert a.command == "echo 2 > '/sys/class/net/a;reboot/queues/rx-0/rps_cpus'"
    named = rps_action(netns("x", 1, 2), "$(reboot)", 0, (), (1,), "why", "effect")
    assert named.command == "ip netns exec x sh -c 'echo 2 > '\"'\"'/sys/class/net/$(reboot)/queues/rx-0/rps_cpus'\"'\"''"
