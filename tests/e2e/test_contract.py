"""One contract from ingest to the partner's handlers, checked with generated inputs against moto:
202 implies the consumer processes the event without failure and every matching handler receives an
equal event; 4xx implies nothing was enqueued."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import strategies as st
from moto import mock_aws

from devtools.lambda_events import signed_event
from devtools.pipeline import Pipeline
from devtools.sam_template import SamTemplate
from ntp_webhooks.envelope import MAX_DEPTH
from ntp_webhooks.events import REGISTRY, EventBase, parse_event
from ntp_webhooks.routing import family_of, template_name
from ntp_webhooks.subscriptions import Subscriptions
from tests.conftest import FAMILIES
from tests.hypothesis_profiles import settings

QUEUES = [f"{template_name(family)}EventsQueue" for family in FAMILIES]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**38, max_value=10**60),  # beyond DynamoDB's 38 digits
    st.floats(allow_nan=False, allow_infinity=False),  # 1e-200 and 1e200 included
    st.text(),  # any unicode (lone surrogates excluded: not encodable, so no sender can send them)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
# The keys the projection keys on, with any JSON value, next to arbitrary other fields.
entity_ids = st.fixed_dictionaries({}, optional={key: json_values for key in ("orderId", "quoteId", "rfqId")})
datas = st.tuples(st.dictionaries(st.text(max_size=8), json_values, max_size=5), entity_ids).map(
    lambda parts: {**parts[0], **parts[1]}
)
event_names = st.one_of(
    st.sampled_from(sorted(REGISTRY)),
    st.from_regex(r"\A(quote|order|workflow|preflight)\.[a-z][a-z0-9_]{0,12}\Z"),
)


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"n": value}
    return value


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(raw body, whether the contract says it is acceptable)."""
    age = draw(st.integers(min_value=0, max_value=71 * 3600))
    data: dict[str, Any] = draw(datas)
    payload: dict[str, Any] = {
        "id": f"evt_{uuid.uuid4().hex}",
        "event": draw(event_names),
        "timestamp": (datetime.now(UTC) - timedelta(seconds=age)).isoformat(),
        "data": data,
    }
    payload.update(draw(st.dictionaries(st.sampled_from(["apiVersion", "partner"]), json_values, max_size=2)))
    flaw = draw(st.sampled_from([None, None, None, "nan", "infinity", "too_deep", "no_id"]))
    if flaw == "nan":
        data["x"] = float("nan")
    elif flaw == "infinity":
        data["x"] = [float("-inf")]
    elif flaw == "too_deep":
        data["x"] = nested(MAX_DEPTH)
    elif flaw == "no_id":
        del payload["id"]
    body = json.dumps(payload, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2])))
    return body.encode(), flaw is None


@pytest.fixture(scope="module")
def received() -> list[EventBase]:
    """Everything a catch-all partner handler is given."""
    return []


@pytest.fixture(scope="module")
def pipeline(template: SamTemplate, received: list[EventBase]) -> Iterator[Pipeline]:
    """The whole pipeline on moto, its consumers running the catch-all handler alone."""
    subscriptions = Subscriptions()
    subscriptions.on("*", name="contract-recorder")(received.append)
    with mock_aws():
        yield Pipeline(template, subscriptions=subscriptions)


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@given(delivery=deliveries())
@example(delivery=(b'{"id":"evt_num","event":"order.created","timestamp":"%s","data":{"orderId":5550123}}', True))
@example(delivery=(b'{"id":"evt_big","event":"quote.received","timestamp":"%s","data":{"n":1e200,"m":1e-200}}', True))
def test_accepted_means_stored_and_handed_over_and_refused_means_not_enqueued(
    pipeline: Pipeline, received: list[EventBase], delivery: tuple[bytes, bool]
) -> None:
    raw, acceptable = delivery
    if b"%s" in raw:  # the explicit examples carry a placeholder for "now"
        raw = raw.replace(b"%s", datetime.now(UTC).isoformat().encode()).replace(
            b'"evt_', f'"evt_{uuid.uuid4().hex}_'.encode(), 1
        )
    response = pipeline.deliver(signed_event(raw))
    status = response["statusCode"]
    assert status == (202 if acceptable else 400), response["body"]
    if status != 202:
        assert all(pipeline.depth(queue) == 0 for queue in QUEUES)
        return
    family = family_of(json.loads(raw)["event"])
    received.clear()
    result = pipeline.poller(family).poll_once()
    assert (result.received, result.failed) == (1, 0)
    (event,) = [e for e in received if e.id == json.loads(raw)["id"]]
    assert event == parse_event(raw)
    assert event.body == raw.decode()
    assert all(pipeline.depth(queue) == 0 for queue in QUEUES)
