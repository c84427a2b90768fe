"""Textual live view of `irqlab top`; widgets render analysis results only."""
