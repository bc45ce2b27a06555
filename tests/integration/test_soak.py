"""A small seeded soak (`make soak` runs 20,000): faults, re-sends and SQS duplicates through the real
functions lose nothing, run no handler twice and leave every entity as in-order delivery would."""

from __future__ import annotations

from moto import mock_aws

from devtools.sam_template import SamTemplate
from tools.soak import Profile, Soak


def test_a_small_seeded_soak_keeps_every_promise(template: SamTemplate) -> None:
    # A higher fault rate than the month's profile, so that a short run meets every kind of fault.
    profile = Profile(deliveries=100, fault=0.03, outage_every=300, outage_calls=8)
    with mock_aws():
        result = Soak(template, profile, seed=7).run()
    assert sum(result.injected.values()) >= 8
    assert len(result.accepted) == 100
    assert result.lost == []
    assert result.state_differences == []
    assert not any(result.dlq.values())
    assert result.repeats == []
    assert result.meets_target()
