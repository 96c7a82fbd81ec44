"""Where a `next` (or any user-supplied) redirect target may send the browser: this site only.

A target is kept only when it is a path on this origin, read the way a browser reads
it: browsers treat a backslash as a slash in http(s) URLs, drop tabs and newlines
anywhere and spaces and control characters at either end, and take `//host` (however
many slashes) as another host. So a target with a control character is refused outright
rather than cleaned, backslashes are normalised before parsing, and what remains must
parse as a path with no scheme and no host that starts with exactly one slash.
Anything else gives the caller's safe default.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

# A base no request can come from: a target that resolves onto another host against it
# would do the same against ours.
_PROBE_BASE = "http://origin.invalid/"


def _has_control_character(text: str) -> bool:
    # C0 controls (tab, CR, LF, NUL, ...), DEL and the C1 controls.
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def local_target(target: str | None) -> str | None:
    """The target as a same-origin path (backslashes made slashes), or None if unsafe."""
    if not isinstance(target, str) or not target or _has_control_character(target):
        return None
    if target != target.strip():
        return None  # a browser would strip the spaces and might then read `//host`
    normalised = target.replace("\\", "/")
    try:
        parts = urlsplit(normalised)
        resolved = urlsplit(urljoin(_PROBE_BASE, normalised))
    except ValueError:  # e.g. an unbalanced '[' read as an IPv6 host
        return None
    if parts.scheme or parts.netloc:
        return None
    # urlsplit reads `///host` as an empty host and the path `/host`; a browser reads the
    # host `host`. So the text itself, not only its parsed path, must start with one slash.
    if not normalised.startswith("/") or normalised.startswith("//"):
        return None
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    if (resolved.scheme, resolved.netloc) != ("http", "origin.invalid"):
        return None
    return normalised


def safe_redirect_target(target: str | None, default: str) -> str:
    """`target` if it stays on this origin (see `local_target`), else `default`."""
    return local_target(target) or default
