"""Errors that the CLI turns into one readable line and a documented exit code.

Exit codes (also in the README): 0 ok, 1 a run failed, 2 bad usage/config/data,
3 results folder locked by another sweep, 130 interrupted.
"""

from __future__ import annotations

EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_INTERRUPTED = 130


class LsexpError(Exception):
    """Base class: an expected failure with a user-facing message and an exit code."""

    exit_code = EXIT_USAGE


class ConfigError(LsexpError):
    """The config (or a command-line override) is invalid. Holds every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DataError(LsexpError):
    """A dataset is missing, incomplete or corrupt. The message says how to fix it."""


class CalibrationError(LsexpError):
    """A post-hoc calibrator cannot be fitted on the data it was given (e.g. too few
    validation examples). The message says how many are needed and how to get them."""


class ResultsError(LsexpError):
    """The results folder cannot be used (not writable, written by a different config)."""


class LockedError(LsexpError):
    """Another sweep holds the results folder."""

    exit_code = EXIT_LOCKED
