"""In-kernel aggregation: eBPF programs assembled, loaded and read from Python alone.

asm.py (instructions as data), syscall.py (bpf(2), perf_event_open), maps.py, programs.py
(the tracepoint programs), backend.py (load, read each interval into analysis.trace types).
No compiler, no kernel headers: field offsets come from tracefs `format` files.
"""
