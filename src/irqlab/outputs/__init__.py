"""Renderers and writers: text, JSON, capture directories; they never read the OS."""
