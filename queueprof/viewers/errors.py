"""Errors of ``queueprof view-check``."""

from __future__ import annotations

from runs import QueueprofError, UsageError

INSTALL_FIX = (
    "install the viewers with `scripts/install-viewers.sh` (as root: Debian's chromium and "
    "chromium-driver, npm's speedscope) or run `tox -e viewers`, which does it for you"
)


class ViewerSetupError(UsageError):
    """A browser, driver or viewer app is missing or unusable (exit status 2)."""


class ViewCheckFailed(QueueprofError):
    """At least one artifact did not render in its viewer (exit status 1)."""
