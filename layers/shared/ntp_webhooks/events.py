"""Typed NowToPrint events for the consumers (pydantic v2).

NowToPrint publishes one example payload, so each model types only the IDs the bundle needs and
keeps every other field (`extra="allow"`): a new field never breaks parsing. An unknown event name
in a known family parses into that family's generic model; any other family is a workflow signal.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from ntp_webhooks.envelope import EVENT_ID_PATTERN, EVENT_NAME_MAX_LENGTH, EVENT_NAME_PATTERN
from ntp_webhooks.routing import ORDER, QUOTE, WORKFLOW, family_of


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class EventBase(_Open):
    """What every event has; `data` is typed by each subclass."""

    id: Annotated[str, Field(pattern=EVENT_ID_PATTERN)]
    event: Annotated[str, Field(max_length=EVENT_NAME_MAX_LENGTH, pattern=EVENT_NAME_PATTERN)]
    timestamp: Annotated[AwareDatetime, Field(strict=True)]
    data: Any

    @property
    def family(self) -> str:
        return family_of(self.event)

    @property
    def action(self) -> str:
        """The part after the family: `received`, `confirmed`, or a name published later."""
        return self.event.split(".", 1)[1]


class NowToPrintEvent(EventBase):
    """The envelope, with the same rules as ingest's validator (a test holds them to it)."""

    data: dict[str, Any]


class QuoteData(_Open):
    rfqId: str | None = None
    quoteId: str | None = None


class OrderData(_Open):
    orderId: str | None = None


class QuoteEvent(EventBase):
    """Any `quote.*` event, including names NowToPrint adds later."""

    data: QuoteData


class QuoteReceived(QuoteEvent):
    event: Literal["quote.received"]


class QuoteUpdated(QuoteEvent):
    event: Literal["quote.updated"]


class OrderEvent(EventBase):
    """Any `order.*` event, including names NowToPrint adds later."""

    data: OrderData


class OrderCreated(OrderEvent):
    event: Literal["order.created"]


class OrderConfirmed(OrderEvent):
    event: Literal["order.confirmed"]


class OrderShipped(OrderEvent):
    event: Literal["order.shipped"]


class WorkflowSignal(NowToPrintEvent):
    """Partner-specific operational events (names not published) and any family not known yet."""


#: Models for documented event names; other names fall back to their family's generic model.
KNOWN_EVENTS: dict[str, type[EventBase]] = {
    "quote.received": QuoteReceived,
    "quote.updated": QuoteUpdated,
    "order.created": OrderCreated,
    "order.confirmed": OrderConfirmed,
    "order.shipped": OrderShipped,
}


def _tag(value: Any) -> str:
    name = value.get("event") if isinstance(value, dict) else getattr(value, "event", None)
    if not isinstance(name, str):
        return WORKFLOW  # the generic model then reports the missing or invalid `event`
    return name if name in KNOWN_EVENTS else family_of(name)


AnyEvent = Annotated[
    Annotated[QuoteReceived, Tag("quote.received")]
    | Annotated[QuoteUpdated, Tag("quote.updated")]
    | Annotated[OrderCreated, Tag("order.created")]
    | Annotated[OrderConfirmed, Tag("order.confirmed")]
    | Annotated[OrderShipped, Tag("order.shipped")]
    | Annotated[QuoteEvent, Tag(QUOTE)]
    | Annotated[OrderEvent, Tag(ORDER)]
    | Annotated[WorkflowSignal, Tag(WORKFLOW)],
    Discriminator(_tag),
]
_ADAPTER: TypeAdapter[EventBase] = TypeAdapter(AnyEvent)


def parse_event(body: str | bytes) -> EventBase:
    """The typed model for a raw webhook body; raises `pydantic.ValidationError`."""
    return _ADAPTER.validate_json(body)
