"""One tracer lifecycle for both trace backends (tracefs and BPF): see lifecycle.py."""
