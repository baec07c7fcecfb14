"""The one place that reads kafka-python's private group state.

kafka-python has no public API for a member's place in its group: whether it is stable, its
generation and member id, whether it must join again. The consumer loop needs them to sleep
while idle without leaving the group, and to tell a join that is moving from one that is stuck
(the group watch). They live on the consumer's private `_coordinator`; this module reads them,
for the kafka-python minor version it was written against, and refuses any other at import
(pyproject pins the same range), so that a change there fails loudly instead of switching the
watch off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kafka import KafkaConsumer

from infra.versions import require

TESTED = ("3.0",)  # kafka-python minor versions this module was written against
require("kafka-python", TESTED, "infra/kafka_compat.py")


@dataclass(frozen=True)
class Membership:
    """A group member's state as its coordinator sees it."""

    state: str  # '<unjoined>', '<rebalancing>' or '<stable>'
    generation: int | None
    member_id: str | None
    must_join: bool  # the heartbeat thread asked for a rejoin, or the coordinator is unknown

    @property
    def settled(self) -> bool:
        """A stable member that need not join again."""
        return self.state == "<stable>" and not self.must_join


@runtime_checkable
class GroupMember(Protocol):
    """A consumer that tells its group state itself (the unit tests' fake)."""

    def group_membership(self) -> Membership | None: ...


def membership(consumer: object) -> Membership | None:
    """The group state of a consumer in a group; None for a consumer without a group (assigned
    partitions) or that cannot tell."""
    if isinstance(consumer, GroupMember):
        return consumer.group_membership()
    if not isinstance(consumer, KafkaConsumer) or consumer.config.get("group_id") is None:
        return None
    coordinator = consumer._coordinator  # noqa: SLF001 - the seam this module exists for
    generation = coordinator._generation  # noqa: SLF001 - None before the first join
    return Membership(state=str(coordinator.state),
                      generation=None if generation is None else generation.generation_id,
                      member_id=None if generation is None else generation.member_id,
                      must_join=bool(coordinator.need_rejoin() or coordinator.coordinator_unknown()))
