"""The cyclictest-like timer latency probe: one pinned, locked, real-time process per CPU.

libc.py binds clock_nanosleep and mlockall through ctypes; worker.py is the measuring loop
that runs in each child process; runner.py forks the children, gathers their samples and
reports progress; dma.py holds /dev/cpu_dma_latency at 0 while a run lasts.
"""
