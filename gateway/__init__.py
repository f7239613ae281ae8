"""Self-hosted mail aggregation gateway."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # `__version__` is read lazily: importlib.metadata scans the installed distributions,
    # a cost every `gateway` command would pay at start-up for a value only IMAP ID shows.
    if name != "__version__":
        raise AttributeError(f"module 'gateway' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mail-gateway")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"
