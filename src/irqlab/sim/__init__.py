"""A discrete-event model of the kernel's interrupt path (softirqs, ksoftirqd, NAPI, tasklets)."""
