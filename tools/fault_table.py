"""The fault table (docs/reliability.md, which describes the faults): a fault injected once at every
AWS call that the ingest and consumer functions make for one new webhook, through botocore's event
hooks on their own clients (moto), then the sender's retries and SQS's redeliveries, and the outcome.
`python -m tools.fault_table` rewrites the page; tests/integration/test_fault_table.py fails when it is stale.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError, ReadTimeoutError

from devtools.lambda_events import signed_event
from devtools.moto_patches import retries_without_backoff
from devtools.pipeline import FAKE_AWS, Pipeline, environment, global_environment, hooked
from devtools.sam_template import REPO_ROOT, SamTemplate
from ntp.deliveries import encode, envelope
from ntp_webhooks.events import EventBase
from ntp_webhooks.handler_runs import KEY_PREFIX
from tools.wall_clock import waits_move_the_clock

if TYPE_CHECKING:
    from tools.edge_scenarios import Edge, FakeClock

DOC = REPO_ROOT / "docs" / "reliability.md"
KINDS = ("fails", "lost response", "times out")
#: The sender's patience in this model: it retries until it gets a 2xx, at most this often.
SENDER_ATTEMPTS = 4
#: The ingest function's timeout in these runs: a claim's lease, which a 409 asks the sender to wait out.
LEASE_SECONDS = 0.5
#: The functions' time budget per AWS call attempt and reserve to answer: faults here are instant and
#: the lease is 0.5 s, so scaled down with it.
BUDGET_SECONDS = 0.05
#: The sender's wait before a retry, scaled down: the lease, with a margin. The keyring's clock (rate
#: limit, cache age) advances by the whole Retry-After the ingest sent, as the real sender waits it.
SENDER_WAIT_SECONDS = LEASE_SECONDS + 0.1
_MAX_POLLS = 8


@dataclass(frozen=True)
class CallPoint:
    function: str  # "ingest" or "consumer"
    service: str
    operation: str
    occurrence: int  # 1 for the first such call in one invocation
    purpose: str

    @property
    def label(self) -> str:
        return f"{self.function}: {self.service} {self.operation} ({self.purpose})"


@dataclass
class Injector:
    """Registered on boto3's default session before the functions create their clients."""

    phase: str = ""
    target: CallPoint | None = None
    kind: str = ""
    fired: bool = False
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    calls: list[CallPoint] = field(default_factory=list)
    current: CallPoint | None = None
    tables: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Hooks on the clients the functions create meanwhile (before the call, and after it)."""
        with hooked("provide-client-params.*.*", self._before), hooked("after-call.*.*", self._after):
            yield

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.seen.clear()

    def _point(self, event_name: str, params: dict[str, Any]) -> CallPoint | None:
        if not self.phase:
            return None  # the event source mapping's own calls, or the harness's
        _, service_id, operation = event_name.split(".")
        service = service_id.replace("-", "")
        self.seen[(service, operation)] += 1
        return CallPoint(
            self.phase, service, operation, self.seen[(service, operation)], self._purpose(service, operation, params)
        )

    def _purpose(self, service: str, operation: str, params: dict[str, Any]) -> str:
        if service == "sqs":
            return "enqueue the event"
        if service == "firehose":
            return "archive the event"
        if service == "secretsmanager":
            return "list the key versions" if operation == "DescribeSecret" else "read a signing key"
        table = self.tables.get(params.get("TableName") or next(iter(params.get("RequestItems", {"": 0}))), "")
        if table == "DedupTable":
            return {
                "PutItem": "claim the event ID",
                "UpdateItem": "mark the claim completed",
                "DeleteItem": "release the claim",
                "GetItem": "read the claim",
            }.get(operation, "dedup")
        if operation == "BatchWriteItem":
            return "record handler completions"
        key = params.get("Key", {}).get("pk", {}).get("S", "")
        if key.startswith(KEY_PREFIX):
            update = params.get("UpdateExpression", "")
            if update.startswith("SET claimToken"):
                return "claim the event for its handlers"
            return "release the claim" if update.startswith("REMOVE") else "record handler completions"
        return "read the state item" if operation == "GetItem" else "write the state item"

    def _before(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        point = self.current = self._point(event_name, params)
        if point is None:
            return
        self.calls.append(point)
        if point == self.target and not self.fired and self.kind != "lost response":
            self.fired = True
            if self.kind == "fails":
                raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, point.operation)
            raise ReadTimeoutError(endpoint_url=f"https://{point.service}.amazonaws.com")

    def _after(self, **_: Any) -> None:
        point, self.current = self.current, None
        if point is not None and point == self.target and not self.fired and self.kind == "lost response":
            self.fired = True
            raise ReadTimeoutError(endpoint_url=f"https://{point.service}.amazonaws.com")


@dataclass
class Outcome:
    sender_sees: str
    messages: int
    handler_runs: int
    final_state: str


class FaultRun:
    def __init__(
        self,
        injector: Injector,
        keyring_clock: FakeClock,
        wait: Callable[[float], None],
        template: SamTemplate | None = None,
    ) -> None:
        # The sender waits by moving the wall clock (tools.wall_clock), and the keyring's clock by every
        # Retry-After; the injector is installed before the functions create their clients.
        self.template, self.injector = template or SamTemplate(), injector
        self.wait, self.keyring_clock = wait, keyring_clock
        from ntp_webhooks.aws_clients import Deadline  # the layer reads its environment at import
        from ntp_webhooks.subscriptions import Subscriptions

        subscriptions = Subscriptions()
        subscriptions.on("*", name="fault-table-recorder")(self._record)
        budget = Deadline(reserve_seconds=BUDGET_SECONDS, attempt_seconds=BUDGET_SECONDS)
        self.pipeline = Pipeline(self.template, subscriptions=subscriptions, budget=budget, keyring_clock=keyring_clock)
        stack = self.pipeline.stack
        self.injector.tables = {stack.refs["DedupTable"]: "DedupTable", stack.refs["StateTable"]: "StateTable"}
        self.runs: Counter[str] = Counter()
        # The harness's reads and the order queue's poller, made once per run rather than once a row (a
        # client ~6 ms, the poller's queue lookup a call): they hold no state, and the injector ignores
        # their calls (no phase). `_invoke` runs the consumer of the row's cold start.
        self.dynamodb = boto3.client("dynamodb")
        self.message_ids: set[str] = set()
        self.poller = self.pipeline.poller("order", self._invoke)

    def _record(self, event: EventBase) -> None:
        self.runs[event.id] += 1

    def scenario(self, target: CallPoint | None, kind: str) -> Outcome:
        injector = self.injector
        injector.target, injector.kind, injector.fired = target, kind, False
        injector.calls.clear()
        self.pipeline.cold_start()
        payload = envelope("order.created", data={"orderId": f"ord_{time.monotonic_ns()}"})
        raw = encode(payload)

        statuses: list[int] = []
        for _ in range(SENDER_ATTEMPTS):
            injector.enter("ingest")
            try:
                response = self.pipeline.deliver(signed_event(raw), timeout_seconds=LEASE_SECONDS)
            finally:
                injector.enter("")
            status = response["statusCode"]
            statuses.append(status)
            if 200 <= status < 300:
                break
            if "Retry-After" in response.get("headers", {}):
                # The sender waits before retrying: a claim's lease has run out (the wall clock, the
                # lease scaled down), and a failed key load may be tried again (the keyring's clock).
                self.keyring_clock.now += float(response["headers"]["Retry-After"])
                self.wait(SENDER_WAIT_SECONDS)

        self.message_ids = set()
        # The queue's depth after the last poll is also the final state's: nothing reads the queue between.
        left = self.pipeline.depth("OrderEventsQueue")
        for _ in range(_MAX_POLLS):
            if left == 0:
                break
            if self.poller.poll_once().failed:  # SQS redelivers a failed record after the queue's VisibilityTimeout
                self.wait(self.poller.mapping.visibility_timeout)
            left = self.pipeline.depth("OrderEventsQueue")
        return Outcome(
            sender_sees=", then ".join(str(s) for s in statuses),
            messages=len(self.message_ids),
            handler_runs=self.runs[payload["id"]],
            final_state=self._final_state(payload, left),
        )

    def _invoke(self, event: dict[str, Any], context: Any) -> Any:
        """The order consumer of this row's cold start, its calls in the injector's consumer phase."""
        self.message_ids.update(record["messageId"] for record in event["Records"])
        self.injector.enter("consumer")
        try:
            return self.pipeline.consumers["order"].lambda_handler(event, context)
        finally:
            self.injector.enter("")

    def _final_state(self, payload: dict[str, Any], order_queue_depth: int) -> str:
        from ntp.operations import read_state  # imports Powertools, which reads its environment

        stack, client = self.pipeline.stack, self.dynamodb
        item = read_state(client, stack.refs["StateTable"], "order", payload["data"]["orderId"])
        done = client.get_item(
            TableName=stack.refs["StateTable"], Key={"pk": {"S": KEY_PREFIX + payload["id"]}}, ConsistentRead=True
        ).get("Item", {})
        problems = []
        if item is None or item["lastEventId"] != payload["id"]:
            problems.append("not projected")
        if len(done.get("done", {}).get("SS", [])) < 2:
            problems.append("handlers not recorded")
        depths = {
            "OrderEventsQueue": order_queue_depth,
            "OrderEventsDeadLetterQueue": self.pipeline.depth("OrderEventsDeadLetterQueue"),
        }
        problems += [f"left on {queue}" for queue, depth in depths.items() if depth]
        return "; ".join(problems) or "stored, handlers recorded, queues empty"


def generate(template: SamTemplate | None = None) -> list[tuple[CallPoint, str, Outcome]]:
    from moto import mock_aws

    from tools.edge_scenarios import FakeClock  # loads the rotation code, which reads its environment

    injector = Injector()
    # Faults are instant: no need to wait before a retry.
    with (
        environment(FAKE_AWS),
        mock_aws(),
        injector.installed(),
        retries_without_backoff(),
        waits_move_the_clock() as wait,
    ):
        run = FaultRun(injector, FakeClock(), wait, template)
        baseline = run.scenario(None, "")
        # Every AWS call of the two functions for one new webhook, on cold starts, in order.
        points = list(dict.fromkeys(run.injector.calls))
        rows = [(CallPoint("none", "-", "-", 0, "no fault"), "-", baseline)]
        for point in points:
            for kind in KINDS:
                rows.append((point, kind, run.scenario(point, kind)))
    return rows


def edge_rows(template: SamTemplate | None = None) -> list[Edge]:
    """The edge scenarios, on a pipeline of their own."""
    from moto import mock_aws

    from tools.edge_scenarios import edge_pipeline, run_all  # loads the rotation code, which reads its environment

    with environment(FAKE_AWS), mock_aws():
        return run_all(edge_pipeline(template or SamTemplate()))


def render(rows: list[tuple[CallPoint, str, Outcome]], edges: list[Edge]) -> str:
    lines = [
        "# Reliability: a fault at every AWS call",
        "",
        "Generated by `python -m tools.fault_table` (tests/integration/test_fault_table.py fails when",
        "this page is stale). One new `order.created` webhook, cold starts, moto in place of AWS, one",
        "partner handler. Each fault is injected once at the named call: **fails** (refused before it took",
        "effect), **lost response** (took effect, then the response was lost), **times out** (nothing",
        f"happened, the SDK gave up). The sender retries every non-2xx answer (up to {SENDER_ATTEMPTS} attempts,",
        f"after Retry-After on a 409 or 503: {SENDER_WAIT_SECONDS} s of wall clock, the lease scaled down, moved",
        "forward instead of slept, while the keyring's clock advances the whole Retry-After); SQS redelivers",
        "a failed record.",
        "",
        "| AWS call | fault | sender sees | messages enqueued | handler runs | final state |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for point, kind, outcome in rows:
        lines.append(
            f"| {point.label if point.function != 'none' else 'none'} | {kind} | {outcome.sender_sees} | "
            f"{outcome.messages} | {outcome.handler_runs} | {outcome.final_state} |"
        )
    lines += [
        "",
        "Reading it: every row ends stored, with the handler recorded, run once, and the queues empty.",
        "The consumer claims the event before its handlers and retries the completion write with",
        "back-off while the invocation has time, so a failed or timed-out completion no longer runs the",
        "handler again. Two messages are enqueued where a SendMessage took effect but its answer was lost",
        "(the claim is released, the sender's retry enqueues again): the second copy finds the event's",
        'steps recorded and runs nothing. The remaining edge of "once" is a crash between a handler\'s',
        "side effect and its completion record (docs/handlers.md, 'What \"once\" means').",
        "",
        "## Edge scenarios",
        "",
        "Generated the same way, each through the functions as SAM invokes them (tools/edge_scenarios.py;",
        "the keyring's clock and the hung calls' timeouts are advanced, not waited for):",
        "",
        "| scenario | outcome |",
        "| --- | --- |",
        *(f"| {edge.scenario} | {edge.outcome} |" for edge in edges),
        "",
    ]
    return "\n".join(lines) + _soak_block()


def _soak_block() -> str:
    """The figures `make soak --write` recorded, kept when the table is regenerated."""
    from tools.soak import BEGIN, END

    text = DOC.read_text() if DOC.exists() else ""
    if BEGIN not in text:
        return ""
    return "\n" + text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"


def main() -> int:
    os.environ.update({"POWERTOOLS_SERVICE_NAME": "fault-table", **global_environment(SamTemplate())})
    # The functions' JSON logs and metrics go to stdout, through handlers bound at import: silence fd 1.
    saved = os.dup(1)
    with open(os.devnull, "w") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            rows, edges = generate(), edge_rows()
        finally:
            os.dup2(saved, 1)
    DOC.write_text(render(rows, edges))
    print(f"wrote {DOC.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
