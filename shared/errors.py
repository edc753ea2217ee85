"""Error kinds that decide what happens to a message that failed."""

from __future__ import annotations

from pydantic import ValidationError


class PermanentError(Exception):
    """The message can never succeed (malformed, unknown entity): dead-letter it at once."""


class UnroutableError(Exception):
    """A publish was returned by the broker: no queue is bound for its routing key."""


class ConfirmLostError(ConnectionError):
    """The broker connection closed while a publish waited for its confirm: it may or may not
    have been taken, so the sender retries with the same message id (consumers deduplicate)."""


def describe_validation_error(error: ValidationError) -> str:
    """``loc: message`` per problem, never the offending input (it may be personal data)."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in item["loc"]) or "(body)"
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


def is_permanent(error: BaseException) -> bool:
    return isinstance(error, PermanentError | ValidationError | UnicodeDecodeError | ValueError)


def describe_error(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        return f"validation failed: {describe_validation_error(error)}"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:500]
