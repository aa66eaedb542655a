"""Which member evaluates: the ownership state machine fed by partition assignments."""

from __future__ import annotations

from typing import NamedTuple

from stream.reputation.ownership import AlertOwnership


class TP(NamedTuple):
    topic: str
    partition: int


INPUT = "review.created"


def test_the_member_with_partition_zero_evaluates_one_term_per_assignment() -> None:
    ownership = AlertOwnership(INPUT)
    assert ownership.status() == {"role": "standby", "term": 0}
    ownership.assigned({TP(INPUT, 1), TP("other", 0)})
    assert not ownership.holds and ownership.role == "standby"
    ownership.assigned({TP(INPUT, 0), TP(INPUT, 1)})
    assert ownership.holds and ownership.status() == {"role": "evaluator", "term": 1}
    # A rebalance that gives the partition back is a new term (the fence is taken again).
    ownership.revoked({TP(INPUT, 0), TP(INPUT, 1)})
    assert not ownership.holds
    ownership.assigned({TP(INPUT, 0)})
    assert ownership.status() == {"role": "evaluator", "term": 2}


def test_a_fenced_member_stands_by_until_it_is_given_the_partition_again() -> None:
    ownership = AlertOwnership(INPUT)
    ownership.assigned({TP(INPUT, 0)})
    ownership.fenced()
    assert not ownership.holds and ownership.role == "fenced"
    ownership.revoked({TP(INPUT, 1)})  # not the evaluator's partition: nothing changes
    assert ownership.role == "fenced"
    ownership.assigned({TP(INPUT, 0)})
    assert ownership.status() == {"role": "evaluator", "term": 2}
