"""The errors a platform adapter raises, named for what the caller does about them."""

from __future__ import annotations


class AdapterError(Exception):
    """Base of every error a platform module raises."""


class SignatureError(AdapterError):
    """The request is not signed by the platform with a secret we hold."""


class PayloadError(AdapterError):
    """The body is malformed; ``field`` names the part that is wrong."""

    def __init__(self, field_path: str, message: str):
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.message = message


class IgnoredEvent(AdapterError):
    """A well-formed event Rapport does not act on; acknowledged and logged."""

    def __init__(self, event_type: str, reason: str | None = None):
        super().__init__(reason or f"event type {event_type!r} is not one Rapport acts on")
        self.event_type = event_type
        self.reason = reason


class TransientError(AdapterError):
    """The platform is unavailable or throttling; try again later."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(AdapterError):
    """The platform refused our credentials: the clinic must reconnect."""


class ConflictError(AdapterError):
    """The record changed under us (optimistic concurrency): re-read and retry."""


class PermanentError(AdapterError):
    """The platform rejected the request in a way retrying will not fix."""


class MissingPermission(PermanentError):
    """The account did not grant a permission (OAuth scope) this call needs: the clinic
    must connect again, granting it. Not an :class:`AuthError`, since the credentials
    still work for everything else."""


RECONNECT_ERRORS = (AuthError, MissingPermission)
"""What only the clinic connecting again fixes: its credentials refused, or a permission
it did not grant. The clinic is marked "needs reconnecting" and its work waits."""
