"""Command line: one file per subcommand; each wires source -> analysis -> output."""
