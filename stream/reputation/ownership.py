"""Which member of the consumer group evaluates the alert rules: exactly one at a time.

The evaluator is the member assigned partition 0 of the input topic. Every assignment that
gives a member that partition opens a new *term*; at the start of a term the member
acquires the group's transactional alert producer (``publisher.FencedAlertPublisher``),
which fences the producer of every earlier term at the broker. A member that was expelled
from the group (a long pause, a network split) but still believes it holds the partition
is fenced on its next publish: it then gives up the role until an assignment gives it the
partition again. Faust's leader election is off in this worker (``topic_disable_leader``),
so the partition assignment is the election.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

EVALUATOR_PARTITION = 0


@dataclass
class AlertOwnership:
    """This member's role, fed by the consumer's partition assignments."""

    input_topic: str
    holds: bool = False
    term: int = 0
    fenced_in_term: int | None = None

    def _has_partition(self, partitions: Iterable[Any]) -> bool:
        return any(
            tp.topic == self.input_topic and tp.partition == EVALUATOR_PARTITION
            for tp in partitions
        )

    def assigned(self, partitions: Iterable[Any]) -> None:
        """A new assignment (the full set of this member's partitions)."""
        if self._has_partition(partitions):
            self.term += 1
            self.holds = True
        else:
            self.holds = False

    def revoked(self, partitions: Iterable[Any]) -> None:
        if self._has_partition(partitions):
            self.holds = False

    def fenced(self) -> None:
        """Another member published under a newer term: stop until reassigned."""
        self.holds = False
        self.fenced_in_term = self.term

    @property
    def role(self) -> str:
        if self.holds:
            return "evaluator"
        return "fenced" if self.fenced_in_term == self.term and self.term else "standby"

    def status(self) -> dict[str, Any]:
        return {"role": self.role, "term": self.term}
