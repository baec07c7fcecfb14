"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from __future__ import annotations

from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None
# True for an expand-only migration (new tables, columns with defaults, indexes): processes of
# the release before keep running on it during a rolling deploy (infra/schema.py). False when
# it drops, renames or changes what that release reads or writes.
compatible = False


def upgrade(database_url: str = "") -> None:
    op.execute("""-- plain SQL""")
