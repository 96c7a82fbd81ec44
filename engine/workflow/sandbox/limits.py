"""Limits of the sandbox and its errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Mode = Literal["exec", "eval"]
DueRow = Mapping[str, str | None]

# --- limits ---------------------------------------------------------------------------------

DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_WORKERS = 2
DEFAULT_STARTUP_TIMEOUT_SECONDS = 20.0
DEFAULT_ACQUIRE_TIMEOUT_SECONDS = 30.0
# Mirrors the deployment lint: a script or an expression longer than this is refused.
MAX_SCRIPT_CHARS = 20_000
MAX_EXPRESSION_CHARS = 2_000
# Largest reply (result and changed data) a child may send back.
MAX_REPLY_BYTES = 8 * 1024 * 1024
MAX_ERROR_CHARS = 1_000
SCRIPT_FILENAME = "<script>"

# --- errors ---------------------------------------------------------------------------------


class SandboxError(Exception):
    """A script could not run to the end in the sandbox (base of all sandbox errors)."""


class SandboxViolation(SandboxError):
    """The source uses something the sandbox does not allow; nothing was run."""

    def __init__(self, message: str, line_number: int | None = None) -> None:
        super().__init__(message)
        self.line_number = line_number


class SandboxTimeout(SandboxError):
    """The script ran out of time (wall clock or CPU); its worker was killed and replaced."""


class SandboxScriptError(SandboxError):
    """The script itself raised, e.g. a NameError or a helper's ValueError."""

    def __init__(self, error_type: str, message: str, line_number: int | None) -> None:
        super().__init__(f"{error_type}: {message}" if message else error_type)
        self.error_type = error_type
        self.detail = message
        self.line_number = line_number
