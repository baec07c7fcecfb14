"""The installed version of a library whose private API one of carprice's seams uses,
checked at the seam's import: a version it was not written for fails loudly, naming the seam,
instead of running with a changed internal."""

from __future__ import annotations

import importlib.metadata


def minor(full: str) -> str:
    """'1.9.1' -> '1.9'."""
    return ".".join(full.split(".")[:2])


def require(distribution: str, tested: tuple[str, ...], seam: str) -> str:
    """The installed version of `distribution`; ImportError unless its minor version is one of
    `tested` (pyproject.toml pins the same)."""
    installed = importlib.metadata.version(distribution)
    if minor(installed) not in tested:
        raise ImportError(
            f"carprice uses private parts of {distribution} as of {', '.join(tested)}.x "
            f"({seam}); {distribution} {installed} is installed. Install a tested version "
            f"(pyproject.toml pins it) or check {seam} against it.")
    return installed
