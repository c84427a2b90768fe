"""One error tree for irqlab; only cli/ maps these to exit codes."""

from __future__ import annotations

from irqlab.units import printable

# A bad token is quoted this short: a file from another machine may hold anything, and an
# error line must stay one readable line that does not echo a file's contents.
EXCERPT_CHARS = 40


class IrqlabError(Exception):
    """Base of every error irqlab raises on purpose."""


class UsageError(IrqlabError):
    """A command line or option value that makes no sense."""


class SourceError(IrqlabError):
    """A kernel file (or a capture of one) could not be read."""

    def __init__(self, path: str, message: str) -> None:
        self.path = str(path)
        self.message = printable(message)
        super().__init__(f"{printable(self.path)}: {self.message}")


class MissingSource(SourceError):
    """The file does not exist (older kernel, other architecture, or a partial capture)."""


class PermissionDenied(SourceError):
    """The file exists but this user may not read it."""


class UnsafeSource(SourceError):
    """A file of a capture or foreign root that irqlab refuses to open or read.

    A symbolic link leading out of the root, a FIFO or device, or a file too large to be a
    kernel file: nothing of it is read, nor shown.
    """


class ParseError(SourceError):
    """A file was read but its text is not what the kernel prints."""

    def __init__(self, path: str, line: int, token: str, message: str) -> None:
        self.line = line
        self.token = token
        super().__init__(path, f"line {line}: {message} (at '{excerpt(token)}')")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of text, control characters escaped, "..." when cut."""
    shown = printable(text)
    if len(shown) <= limit:
        return shown
    out, size = [], 0
    for ch in text:  # cut between escapes, never inside one
        piece = printable(ch)
        if size + len(piece) > limit - 3:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + "..."


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
