"""The revision the processes require is the newest migration."""

import migrations
from infra.schema import REQUIRED_REVISION


def test_the_processes_need_the_newest_migration() -> None:
    assert migrations.head() == REQUIRED_REVISION
    assert [rev for rev, _ in migrations.history()][-1] == REQUIRED_REVISION
