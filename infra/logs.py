"""Logging setup for every process."""

from __future__ import annotations

import logging
import os
import sys


def setup(process: str) -> None:
    """One line per record, tagged with the process name; level from LOG_LEVEL."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(), stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {process}[%(process)d] %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(os.environ.get("KAFKA_LOG_LEVEL", "WARNING").upper())
