"""irqlab: see, measure, explain and defend a Linux machine's interrupt path."""

__version__ = "0.1.0"
