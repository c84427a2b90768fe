"""Everything that reads the OS: one module per kernel file, roots injected (sources/fs.py)."""
