"""carprice's tests: unit (no services), integration (real PostgreSQL and Kafka), e2e."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
