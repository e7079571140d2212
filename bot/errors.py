"""The exceptions that become a private message to the person who caused them."""

from __future__ import annotations


class UserFacingError(Exception):
    """Its message is shown to the user as is (ephemeral)."""


class NotStaff(UserFacingError):
    pass


class CaseNotFound(UserFacingError):
    pass


class BadCommand(UserFacingError):
    pass


class RequestClosed(UserFacingError):
    pass


class StaleAction(UserFacingError):
    pass


class RatingRefused(UserFacingError):
    """A rating click that records nothing: not the customer who was asked, or already rated."""


class FeedbackRefused(UserFacingError):
    """A 👍/👎 click that records nothing: not the customer who asked, or clicked before."""
