"""Typed NowToPrint events for the consumers (pydantic v2), and the registry of known event types.

NowToPrint publishes one example payload, so each model types only the IDs the bundle keys on and
keeps every other field (`extra="allow"`): a new field never breaks parsing. An unknown event name
in a known family parses into that family's generic model; any other family is a workflow signal.

The registry is the one place that defines an event type: its name (and so its family), its model,
the entity key it is projected under and its lifecycle rank. Adding a documented type is one
`@event_type(...)` class here, its sample `data` in ntp/deliveries.py, then `make events`. A
family of the partner's own parses untyped, or with models they register in their handlers' module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    PrivateAttr,
    Tag,
    TypeAdapter,
)

from ntp_webhooks.envelope import parse_envelope
from ntp_webhooks.routing import ORDER, QUOTE, WORKFLOW, family_of


def _entity_id(value: Any) -> str | None:
    # IDs may be sent as strings or integers; the typed model and the state table use the string
    # form. Any other type is treated as missing (the event is stored under its event ID) rather than
    # failing a record that ingest accepted; `event.body` still holds what was sent.
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


#: An entity ID as the models expose it: a string, or None when absent or unusable.
EntityId = Annotated[str | None, BeforeValidator(_entity_id)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class EventBase(_Open):
    """What every event has; `data` is typed by each subclass."""

    #: The `data` field the projection keys this event's entity on; None: one item per event.
    entity_key: ClassVar[str | None] = None

    # The envelope's rules live in one place, `envelope.parse_envelope`, which `parse_event` applies
    # first: these fields only carry its results.
    id: str
    event: str
    timestamp: AwareDatetime
    data: Any
    _body: str = PrivateAttr(default="")

    @property
    def family(self) -> str:
        return family_of(self.event)

    @property
    def action(self) -> str:
        """The part after the family: `received`, `confirmed`, or a name published later."""
        return self.event.split(".", 1)[1]

    @property
    def body(self) -> str:
        """The webhook body exactly as NowToPrint sent it (numbers with all their digits)."""
        return self._body

    @property
    def entity_id(self) -> str | None:
        """The ID of the quote or order this event is about, as a string; None if it has none."""
        key = self.entity_key
        return None if key is None else getattr(self.data, key, None)


class NowToPrintEvent(EventBase):
    """The envelope with untyped `data`."""

    data: dict[str, Any]


class QuoteData(_Open):
    rfqId: EntityId = None
    quoteId: EntityId = None


class OrderData(_Open):
    orderId: EntityId = None


class QuoteEvent(EventBase):
    """Any `quote.*` event, including names NowToPrint adds later."""

    entity_key = "quoteId"
    data: QuoteData


class OrderEvent(EventBase):
    """Any `order.*` event, including names NowToPrint adds later."""

    entity_key = "orderId"
    data: OrderData


class WorkflowSignal(NowToPrintEvent):
    """Partner-specific operational events (names not published) and any family not known yet."""


@dataclass(frozen=True)
class EventType:
    name: str
    model: type[EventBase]
    #: Tie-break between events of one entity with equal timestamps: the higher rank wins.
    rank: int

    @property
    def family(self) -> str:
        return family_of(self.name)


#: Every documented event type, by name.
REGISTRY: dict[str, EventType] = {}
#: Every registration so far, replacements included: what the parser cache is keyed on.
_registered: list[str] = []
#: Generic model per documented family, for names not in the registry. A family you add to template.yaml's
#: list parses with untyped `data` and no entity (one state item per event), unless you give it models.
FAMILY_MODELS: dict[str, type[EventBase]] = {QUOTE: QuoteEvent, ORDER: OrderEvent, WORKFLOW: WorkflowSignal}
#: The tag of any other event: a family of yours without models of its own.
UNTYPED = "*"


def event_type[M: type[EventBase]](name: str, *, rank: int) -> Any:
    """Register `name` with the decorated model (a subclass of its family's generic model). A partner's
    registration of a name a later release of ours documents too replaces ours, so their handlers'
    module keeps importing unchanged; two registrations from one module are a mistake."""

    def register(model: M) -> M:
        family_model = FAMILY_MODELS.get(name.split(".", 1)[0], NowToPrintEvent)
        if not issubclass(model, family_model):
            raise TypeError(f"{model.__name__} must subclass {family_model.__name__} for {name!r}")
        known = REGISTRY.get(name)
        if known is not None and (known.model.__module__ != __name__ or model.__module__ == __name__):
            raise ValueError(f"event type {name!r} registered twice")
        REGISTRY[name] = EventType(name, model, rank)
        _registered.append(name)  # a new parser for the next event (a replacement keeps the size)
        return model

    return register


@event_type("quote.received", rank=1)
class QuoteReceived(QuoteEvent):
    """NowToPrint's published example: a quote was requested for an RFQ."""


@event_type("quote.updated", rank=2)
class QuoteUpdated(QuoteEvent):
    pass


@event_type("order.created", rank=1)
class OrderCreated(OrderEvent):
    pass


@event_type("order.confirmed", rank=2)
class OrderConfirmed(OrderEvent):
    pass


@event_type("order.shipped", rank=3)
class OrderShipped(OrderEvent):
    pass


event_type("workflow.preflight_completed", rank=0)(WorkflowSignal)


def rank_of(event_name: str) -> int:
    """Lifecycle rank of a full event name; names not in the registry rank lowest (0)."""
    known = REGISTRY.get(event_name)
    return known.rank if known else 0


def _tag(value: dict[str, Any]) -> str:
    name: str = value["event"]  # valid: `parse_envelope` checked it first
    if name in REGISTRY:
        return name
    family = family_of(name)
    return family if family in FAMILY_MODELS else UNTYPED


@cache
def _adapter(registrations: int) -> TypeAdapter[EventBase]:
    """The union of every registered model, built again when a type is registered (a partner's
    `@event_type` in their handlers' module, for a family of their own)."""
    choices = [Annotated[t.model, Tag(t.name)] for t in REGISTRY.values()]
    choices += [Annotated[model, Tag(family)] for family, model in FAMILY_MODELS.items()]
    choices += [Annotated[NowToPrintEvent, Tag(UNTYPED)]]
    union: Any = choices[0]
    for choice in choices[1:]:
        union = union | choice
    return TypeAdapter(Annotated[union, Discriminator(_tag)])


_adapter(len(_registered))  # built at import (Lambda's init phase), not by the first record


def parse_event(body: str | bytes) -> EventBase:
    """The typed model for a raw webhook body, by the same rules as ingest: raises
    `envelope.EnvelopeError` for a body ingest would refuse (or `pydantic.ValidationError`)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    envelope = parse_envelope(raw)
    event = _adapter(len(_registered)).validate_python({**envelope.fields, "timestamp": envelope.timestamp})
    event._body = raw.decode("utf-8")
    return event
