"""One error tree for irqlab; only cli/ maps these to exit codes."""

from __future__ import annotations


class IrqlabError(Exception):
    """Base of every error irqlab raises on purpose."""


class UsageError(IrqlabError):
    """A command line or option value that makes no sense."""


class SourceError(IrqlabError):
    """A kernel file (or a capture of one) could not be read."""

    def __init__(self, path: str, message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


class MissingSource(SourceError):
    """The file does not exist (older kernel, other architecture, or a partial capture)."""


class PermissionDenied(SourceError):
    """The file exists but this user may not read it."""


class ParseError(SourceError):
    """A file was read but its text is not what the kernel prints."""

    def __init__(self, path: str, line: int, token: str, message: str) -> None:
        self.line = line
        self.token = token
        shown = token if len(token) <= 40 else token[:37] + "..."
        super().__init__(path, f"line {line}: {message} (at {shown!r})")


class TracefsUnavailable(IrqlabError):
    """tracefs is not mounted, not permitted, or lacks an event."""


class CaptureError(IrqlabError):
    """A capture directory or recording is missing or not what irqlab wrote."""

    def __init__(self, *parts: str) -> None:
        # CaptureError("msg") or CaptureError(path, "msg"): one line either way.
        super().__init__(": ".join(str(p) for p in parts))


def reason_of(exc: SourceError) -> str:
    """One word for why a source could not be read: missing, permission, parse or error."""
    if isinstance(exc, MissingSource):
        return "missing"
    if isinstance(exc, PermissionDenied):
        return "permission"
    return "parse" if isinstance(exc, ParseError) else "error"
