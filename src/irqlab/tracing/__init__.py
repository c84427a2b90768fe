"""tracefs: a private instance, the binary ring-buffer reader, and decoding into EventBatch.

instance.py finds (or mounts) tracefs and owns the `instances/irqlab-<pid>` lifecycle;
formats.py parses the kernel's own layout files; ringbuf.py walks raw pages; decode.py turns
records into model.events.EventBatch columns; stats.py reads per-CPU loss counters;
textparse.py parses the text trace_pipe as a fallback; session.py wires them (TraceSession).
"""
