"""Errors that the CLI and nodes report to a person without a traceback.

Messages should name the thing (topic, file, field), what was wrong and the fix.
"""


class UserFacingError(Exception):
    """An expected failure with an explanation a user can act on."""


class InputError(UserFacingError):
    """Bad input data (file, message, bag)."""


class ConfigError(UserFacingError):
    """An invalid configuration value."""


class BackendUnavailable(UserFacingError):
    """An inference backend was requested but its package is not installed."""
