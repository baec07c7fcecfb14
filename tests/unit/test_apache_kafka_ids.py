"""The KRaft cluster ids the dev stack generates."""

from devstack.apache_kafka import _cluster_id


def test_a_cluster_id_never_starts_with_a_dash_which_the_storage_tool_reads_as_an_option() -> None:
    # one random id in 64 starts with "-": 2,000 of them without the guard fail almost surely
    ids = [_cluster_id() for _ in range(2000)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 22 for i in ids)
