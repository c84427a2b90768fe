"""Pure analysis: rates, findings, detectors; no I/O, no clock."""
