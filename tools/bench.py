"""Prints the performance budgets (`make bench`). Measured, never asserted as timings in tests.

- Cold import of each handler module from the `sam build` output, with only the stdlib and boto3
  on the path (as in Lambda), against `import boto3` alone, measured in the same run.
- Handler overhead per request, excluding time inside AWS SDK calls (moto in-process).
- AWS calls per new event, per duplicate, and Secrets Manager calls per warm request.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import boto3

from devtools.function_output import routed
from devtools.sam_template import REPO_ROOT, SamTemplate, load_function_module

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
RUNTIME_DIR = REPO_ROOT / ".aws-sam" / "lambda-runtime"
LAYER_DIR = BUILD_DIR / "SharedLayer" / "python"

_IMPORT = r"""
import json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
started = time.perf_counter()
__import__(sys.argv[2])
print((time.perf_counter() - started) * 1000)
"""


def _native_shim() -> Path:
    """The layer's pydantic_core is built for arm64; load the host build of the same version."""
    import pydantic_core

    shim = Path(tempfile.mkdtemp(prefix="bench-shim-"))
    (shim / "pydantic_core").symlink_to(Path(pydantic_core.__file__).parent)
    return shim


def _import_ms(module: str, paths: list[str], env: dict[str, str]) -> float:
    result = subprocess.run(
        [sys.executable, "-S", "-c", _IMPORT, json.dumps(paths), module],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", **env},
        check=True,
    )
    return float(result.stdout.strip())


def cold_imports(template: SamTemplate, runs: int) -> list[tuple[str, float, float, float]]:
    """(function, median handler import ms, median `import boto3` ms, median ratio of back-to-back pairs).

    Each pair is two fresh processes, one right after the other, so both see the same machine load.
    Budget: at most 1.3 (docs/performance.md).
    """
    from tools.sample_events import offline_stack  # the names the local stack gives every resource

    shim, stack = _native_shim(), offline_stack(template)
    rows = []
    for logical_id, spec in template.functions().items():
        env = {**stack.function_environment(template, logical_id), "AWS_DEFAULT_REGION": "us-east-1"}
        paths = [str(BUILD_DIR / logical_id), str(shim), str(LAYER_DIR), str(RUNTIME_DIR)]
        handler_ms, boto3_ms = [], []
        for run in range(runs):
            # Alternate which goes first so drift in machine load cancels out.
            if run % 2:
                handler_ms.append(_import_ms(spec.module, paths, env))
                boto3_ms.append(_import_ms("boto3", paths, env))
            else:
                boto3_ms.append(_import_ms("boto3", paths, env))
                handler_ms.append(_import_ms(spec.module, paths, env))
        ratios = [h / b for h, b in zip(handler_ms, boto3_ms, strict=True)]
        rows.append((logical_id, statistics.median(handler_ms), statistics.median(boto3_ms), statistics.median(ratios)))
    return rows


_COLD_START = r"""
import json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
event = json.loads(sys.argv[3])


class Context:
    function_name = "IngestFunction"
    function_version = "$LATEST"
    aws_request_id = "3f0c9d4e-8b1a-4c55-9a7e-2d6f1b0c7a11"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:IngestFunction"
    log_group_name = log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return 10000


started = time.perf_counter()
module = __import__(sys.argv[2])
imported = time.perf_counter()
response = module.lambda_handler(event, Context())
answered = time.perf_counter()
print(json.dumps({"init_ms": (imported - started) * 1000, "first_ms": (answered - imported) * 1000,
                  "status": response["statusCode"]}))
"""

#: What a webhook receiver without this project's guarantees does on its first request: read the
#: secret, verify, one conditional write, one send. The cold-start budget is measured against it.
NAIVE_HANDLER = """
import hashlib, hmac, json, os
import boto3

_secrets, _dynamodb, _sqs = boto3.client("secretsmanager"), boto3.client("dynamodb"), boto3.client("sqs")


def lambda_handler(event, context):
    secret = _secrets.get_secret_value(SecretId=os.environ["SIGNING_SECRET_ARN"])["SecretString"].encode()
    body = event["body"].encode()
    received = event["headers"].get("x-webhook-signature", "").removeprefix("sha256=")
    if not hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).hexdigest(), received):
        return {"statusCode": 401}
    event_id = json.loads(body)["id"]
    _dynamodb.put_item(TableName=os.environ["DEDUP_TABLE_NAME"], Item={"id": {"S": event_id}},
                       ConditionExpression="attribute_not_exists(id)")
    _sqs.send_message(QueueUrl=os.environ["QUEUE_URL_Order"], MessageBody=event["body"])
    return {"statusCode": 202}
"""


def cold_starts(template: SamTemplate, runs: int) -> dict[str, float]:
    """Init plus the first request of IngestFunction, against a naive handler, each in a fresh
    `python -S` process with the Lambda path, talking to a moto server: medians (ms) and the median
    ratio of back-to-back pairs. Budget: at most 1.1."""
    import boto3
    from moto.server import ThreadedMotoServer

    from devtools.deliveries import LOCAL_DEV_SECRET, envelope, signed_event
    from devtools.pipeline import global_environment
    from devtools.provision import Provisioner

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        aws = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

        def client(service: str) -> Any:
            return boto3.client(  # type: ignore[call-overload]
                service,
                endpoint_url=aws["AWS_ENDPOINT_URL"],
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",  # noqa: S106 - moto's fake credentials
            )

        stack = Provisioner(template, client, secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET}).provision()
        function_env = {
            **global_environment(template),
            **stack.function_environment(template, "IngestFunction"),
            **aws,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",  # as Lambda sets it
        }
        naive_dir = Path(tempfile.mkdtemp(prefix="bench-naive-"))
        (naive_dir / "naive_handler.py").write_text(NAIVE_HANDLER)
        paths = [str(BUILD_DIR / "IngestFunction"), str(_native_shim()), str(LAYER_DIR), str(RUNTIME_DIR)]
        spec = template.function("IngestFunction")

        def start(module: str, where: list[str]) -> dict[str, float]:
            event = json.dumps(signed_event(envelope("order.created")))
            result = subprocess.run(
                [sys.executable, "-S", "-c", _COLD_START, json.dumps(where), module, event],
                capture_output=True,
                text=True,
                env={"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", **function_env},
                check=True,
            )
            measured: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
            if measured["status"] != 202:
                raise RuntimeError(f"{module}: the first request got {measured['status']}")
            return measured

        ours: list[dict[str, float]] = []
        naive: list[dict[str, float]] = []
        for run in range(runs):
            pair = [(ours, spec.module, paths), (naive, "naive_handler", [str(naive_dir), str(RUNTIME_DIR)])]
            for into, module, where in pair if run % 2 else list(reversed(pair)):
                into.append(start(module, where))
    finally:
        server.stop()
    total = [o["init_ms"] + o["first_ms"] for o in ours]
    naive_total = [n["init_ms"] + n["first_ms"] for n in naive]
    return {
        "init_ms": statistics.median(o["init_ms"] for o in ours),
        "first_ms": statistics.median(o["first_ms"] for o in ours),
        "naive_init_ms": statistics.median(n["init_ms"] for n in naive),
        "naive_first_ms": statistics.median(n["first_ms"] for n in naive),
        "ratio": statistics.median(t / n for t, n in zip(total, naive_total, strict=True)),
    }


def _timed(handler: Callable[..., Any], event: dict[str, Any], sink: TextIO) -> tuple[float, Any]:
    """Seconds one invocation takes, its logs and EMF metrics formatted as in Lambda, into `sink`."""
    from devtools.lambda_events import LambdaContext

    with routed(sink):
        started = time.perf_counter()
        response = handler(event, LambdaContext())
        return time.perf_counter() - started, response


def _calls_of_default_session() -> list[str]:
    """Every AWS call the functions make from now on (their clients come from boto3's default session)."""
    calls: list[str] = []
    boto3.DEFAULT_SESSION = None
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-call.*.*", lambda event_name, **_: calls.append(event_name))
    return calls


def request_overhead(template: SamTemplate, requests: int) -> dict[str, float]:
    """Median handler time per request with botocore's Stubber answering every AWS call (our code and
    the SDK's client-side work, no HTTP or emulator), plus AWS call counts measured on moto."""
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_DEFAULT_REGION="us-east-1")
    os.environ["AWS_SECRET_ACCESS_KEY"] = "bench"  # noqa: S105 - moto's fake credentials
    os.environ.pop("AWS_ENDPOINT_URL", None)

    from botocore.stub import Stubber
    from moto import mock_aws

    from devtools.deliveries import LOCAL_DEV_SECRET, envelope, signed_event
    from devtools.provision import Provisioner

    with mock_aws(), open(os.devnull, "w") as sink:
        stack = Provisioner(
            template, boto3.client, secret_values={"WebhookSigningSecret": LOCAL_DEV_SECRET}, operations=False
        ).provision()
        os.environ.update(stack.function_environment(template, "IngestFunction"))
        handler = load_function_module(template, "IngestFunction", "bench_ingest")
        calls = _calls_of_default_session()

        def run(event: dict[str, Any]) -> tuple[float, list[str]]:
            calls.clear()
            total, response = _timed(handler.lambda_handler, event, sink)
            assert response["statusCode"] in (200, 202), response
            return total, list(calls)

        run(signed_event(envelope()))  # cold: clients, keys
        new_calls, dup_calls, sm_calls, moto_new = [], [], 0, []
        for _ in range(requests):
            payload = envelope("order.created")
            total, made = run(signed_event(payload))
            moto_new.append(total * 1000)
            new_calls.append(len(made))
            sm_calls += sum("secrets-manager" in c for c in made)
            dup_calls.append(len(run(signed_event(payload))[1]))

        # The same handler with each AWS answer given by botocore's Stubber (keys are cached): a new
        # event's claim, send and completion; a duplicate's refused claim, which carries the stored
        # record as DynamoDB returns it (ReturnValuesOnConditionCheckFailure).
        ingest = handler._ingest()
        dynamodb, sqs = ingest._dedup.persistence.client, ingest._queues._client
        repeated, table = envelope("order.created"), stack.refs["DedupTable"]
        before = {item["id"]["S"] for item in boto3.client("dynamodb").scan(TableName=table)["Items"]}
        run(signed_event(repeated))
        (record,) = [i for i in boto3.client("dynamodb").scan(TableName=table)["Items"] if i["id"]["S"] not in before]
        sent = {"MessageId": "00000000-0000-4000-8000-000000000000", "MD5OfMessageBody": "0" * 32}
        sdk = _SdkTime(dynamodb, sqs)
        with_sdk: dict[str, list[float]] = {"new": [], "duplicate": []}
        ours: dict[str, list[float]] = {"new": [], "duplicate": []}

        def measure(kind: str, event: dict[str, Any]) -> None:
            sdk.spent = 0.0
            total = run(event)[0]
            with_sdk[kind].append(total * 1000)
            ours[kind].append((total - sdk.spent) * 1000)

        with Stubber(dynamodb) as dynamodb_stub, Stubber(sqs) as sqs_stub:
            for _ in range(requests):
                dynamodb_stub.add_response("put_item", {})
                sqs_stub.add_response("send_message", sent)
                dynamodb_stub.add_response("update_item", {})
                measure("new", signed_event(envelope("order.created")))
                dynamodb_stub.add_client_error(
                    "put_item", "ConditionalCheckFailedException", modeled_fields={"Item": record}
                )
                measure("duplicate", signed_event(repeated))
            dynamodb_stub.assert_no_pending_responses()
        return {
            "new_overhead_ms": statistics.median(ours["new"]),
            "duplicate_overhead_ms": statistics.median(ours["duplicate"]),
            "new_with_sdk_ms": statistics.median(with_sdk["new"]),
            "duplicate_with_sdk_ms": statistics.median(with_sdk["duplicate"]),
            "moto_new_ms": statistics.median(moto_new),
            "calls_new": max(new_calls),
            "calls_duplicate": max(dup_calls),
            "sm_calls_warm": sm_calls,
        }


class _SdkTime:
    """Seconds spent inside the clients' API calls, from botocore's first event of a call
    (`provide-client-params`) to its last (`after-call`, emitted for errors too)."""

    def __init__(self, *clients: Any) -> None:
        self.spent = 0.0
        self._started = 0.0
        for client in clients:
            client.meta.events.register_first("provide-client-params.*.*", self._start)
            client.meta.events.register_last("after-call.*.*", self._stop)

    def _start(self, **_: Any) -> None:
        self._started = time.perf_counter()

    def _stop(self, **_: Any) -> None:
        self.spent += time.perf_counter() - self._started


def consumer_batches(template: SamTemplate, batches: int) -> dict[str, float]:
    """Consumer time per batch of 10 with botocore's Stubber answering its AWS calls, and DynamoDB
    calls per processed record measured on moto."""
    from botocore.stub import Stubber
    from moto import mock_aws

    from devtools.deliveries import encode, envelope
    from devtools.event_source import lambda_sqs_record
    from devtools.provision import Provisioner

    with mock_aws(), open(os.devnull, "w") as sink:
        stack = Provisioner(template, boto3.client, operations=False).provision()
        os.environ.update(stack.function_environment(template, "OrderConsumerFunction"))
        handler = load_function_module(template, "OrderConsumerFunction", "bench_consumer")
        arn = stack.attributes[("OrderEventsQueue", "Arn")]

        def batch() -> dict[str, Any]:
            records = []
            for _ in range(10):
                body = encode(envelope("order.created", data={"orderId": "ord_" + os.urandom(6).hex()})).decode()
                message = {"MessageId": os.urandom(8).hex(), "ReceiptHandle": "r", "Body": body, "Attributes": {}}
                records.append(lambda_sqs_record(message, arn, "us-east-1"))
            return {"Records": records}

        def run(event: dict[str, Any]) -> float:
            elapsed, response = _timed(handler.lambda_handler, event, sink)
            assert response == {"batchItemFailures": []}, response
            return elapsed

        calls = _calls_of_default_session()
        run(batch())  # cold: client creation
        calls.clear()
        run(batch())
        ddb_calls_per_record = sum(".dynamodb." in c for c in calls) / 10

        # Per record, as DynamoDB and Firehose answer a new event: the claim (nothing done yet), the
        # archive record, the state item's read (none yet) and write, and the completion.
        consumer = handler._consumer()
        dynamodb, firehose = consumer._projection._client, consumer._archive._client
        pure = []
        with Stubber(dynamodb) as dynamodb_stub, Stubber(firehose) as firehose_stub:
            for _ in range(batches):
                for _ in range(10):
                    dynamodb_stub.add_response("update_item", {"Attributes": {}})
                    firehose_stub.add_response("put_record", {"RecordId": "r"})
                    dynamodb_stub.add_response("get_item", {})
                    dynamodb_stub.add_response("update_item", {})
                    dynamodb_stub.add_response("update_item", {})
                pure.append(run(batch()) * 1000)
            dynamodb_stub.assert_no_pending_responses()
        return {"batch_ms": statistics.median(pure), "ddb_calls_per_record": ddb_calls_per_record}


def junk_flood(template: SamTemplate, seconds: float = 60.0, step: float = 0.01) -> dict[str, float]:
    """Secrets Manager calls made by one ingest keyring while junk arrives every `step` seconds, and
    how long after a rotation adds a key the sender's first delivery with it is accepted."""
    import boto3
    from moto import mock_aws

    from ntp_webhooks import signature
    from ntp_webhooks.keyring import PENDING, Keyring

    now = [0.0]
    with mock_aws():
        client = boto3.client("secretsmanager")
        arn = client.create_secret(Name="bench-signing", SecretString="key-one")["ARN"]
        calls: list[str] = []
        client.meta.events.register("before-call.secrets-manager.DescribeSecret", lambda **_: calls.append("d"))
        keyring = Keyring(client, arn, monotonic=lambda: now[0])
        body, new_key_at, accepted_at = b'{"id":"evt_bench"}', None, None
        while now[0] < seconds:
            if new_key_at is None and now[0] >= 20.3:
                client.put_secret_value(SecretId=arn, SecretString="key-two", VersionStages=[PENDING])
                new_key_at = now[0]
            if signature.verify(body, "0" * 64, keyring.accepted_keys()) is None:
                keyring.refresh_after_miss()
            if new_key_at is not None and accepted_at is None:
                digest = signature.sign(body, b"key-two").removeprefix(signature.PREFIX)
                stage = signature.verify(body, digest, keyring.accepted_keys())
                if stage is None and keyring.refresh_after_miss():
                    stage = signature.verify(body, digest, keyring.accepted_keys())
                accepted_at = now[0] if stage else None
            now[0] += step
    return {"describe_calls": len(calls), "new_key_delay_s": (accepted_at or seconds) - (new_key_at or 0.0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--import-runs", type=int, default=21)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--write", action="store_true", help=f"record the output in {DOC.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    if not (BUILD_DIR / "template.yaml").exists():
        print("no sam build output: run `make build` first", file=sys.stderr)
        return 2
    template = SamTemplate()
    from devtools.pipeline import global_environment

    # Powertools reads these when ntp_webhooks is first imported, whichever step imports it first.
    os.environ.update(global_environment(template))
    with _tee() as output:
        run(template, args)
    if args.write:
        write_doc(output.getvalue())
        print(f"wrote {DOC.relative_to(REPO_ROOT)}")
    return 0


DOC = REPO_ROOT / "docs" / "performance.md"
START, END = "<!-- bench -->", "<!-- /bench -->"


class _Tee(io.StringIO):
    def write(self, text: str) -> int:
        if sys.__stdout__ is not None:
            sys.__stdout__.write(text)
        return super().write(text)


@contextmanager
def _tee() -> Iterator[io.StringIO]:
    """Print as usual, and keep a copy for --write."""
    buffer = _Tee()
    saved, sys.stdout = sys.stdout, buffer
    try:
        yield buffer
    finally:
        sys.stdout = saved


def write_doc(output: str) -> None:
    """The block of docs/performance.md between the bench markers: this run's output, dated."""
    import platform

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    recorded = time.strftime("%Y-%m-%d")
    block = f"Recorded {recorded} ({machine}) by `make bench ARGS=--write`:\n\n```\n{output.rstrip()}\n```"
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    DOC.write_text(f"{head}{START}\n{block}\n{END}{rest.split(END, 1)[1]}")


def committed_block() -> str:
    return DOC.read_text().split(START, 1)[1].split(END, 1)[0]


def run(template: SamTemplate, args: argparse.Namespace) -> None:

    print(f"Cold import from .aws-sam/build (median of {args.import_runs}, python -S, stdlib + boto3 only)")
    for logical_id, handler_ms, boto3_ms, ratio in cold_imports(template, args.import_runs):
        budget = (
            ("(budget 1.30) " + ("ok" if ratio <= 1.3 else "OVER BUDGET")) if logical_id == "IngestFunction" else ""
        )
        print(
            f"  {logical_id:<26} handler {handler_ms:7.1f} ms   boto3 alone {boto3_ms:7.1f} ms"
            f"   ratio {ratio:4.2f} {budget}"
        )

    runs = 31  # pairs: the ratio of two ~250 ms starts moves by ±0.04 over 10 pairs on a shared VM
    cold = cold_starts(template, runs)
    print(f"IngestFunction cold start: init + first request (median of {runs}, python -S, moto server)")
    print(f"  ours    init {cold['init_ms']:7.1f} ms   first request {cold['first_ms']:6.1f} ms")
    print(f"  naive   init {cold['naive_init_ms']:7.1f} ms   first request {cold['naive_first_ms']:6.1f} ms")
    verdict = "ok" if cold["ratio"] <= 1.1 else "OVER BUDGET"
    print(f"  ratio {cold['ratio']:.2f} (budget 1.10) {verdict}")

    result = request_overhead(template, args.requests)
    print(f"IngestFunction overhead per request (median of {args.requests}, warm, logs formatted to /dev/null)")
    print("  AWS answered by botocore's Stubber")
    print(f"    our code (SDK calls subtracted):     new {result['new_overhead_ms']:6.3f} ms   (budget 1 ms)", end="")
    print(f"   duplicate {result['duplicate_overhead_ms']:6.3f} ms")
    print(f"    with the SDK's client-side work:     new {result['new_with_sdk_ms']:6.3f} ms", end="")
    print(f"   duplicate {result['duplicate_with_sdk_ms']:6.3f} ms")
    print(f"  moto in process (emulator included):   new {result['moto_new_ms']:6.3f} ms")
    print("AWS calls per webhook")
    print(f"  new event       {result['calls_new']}   (budget 3)")
    print(f"  duplicate       {result['calls_duplicate']}   (budget 1)")
    print(f"  Secrets Manager calls over {2 * args.requests} warm requests: {result['sm_calls_warm']}   (budget 0)")

    consumer = consumer_batches(template, args.batches)
    print(f"OrderConsumerFunction per batch of 10 new events (median of {args.batches}, warm)")
    print(f"  AWS answered by botocore's Stubber: {consumer['batch_ms']:6.2f} ms per batch")
    print(
        f"  DynamoDB calls per record: {consumer['ddb_calls_per_record']:.2f}   (budget 4: claim, read, write, finish)"
    )

    flood = junk_flood(template)
    print("Secrets Manager under junk (bad signatures every 10 ms for 60 s, a new key at 20.3 s, fake clock)")
    print(f"  DescribeSecret calls: {flood['describe_calls']}   (bound: 1 per second per environment + 1)")
    print(f"  new key accepted {flood['new_key_delay_s']:.2f} s after it appeared   (budget 2 s)")

    for line in per_webhook(template):
        print(line)


#: Per-webhook budgets of what a webhook costs (docs/cost.md); tests/integration/test_cost.py asserts them.
COST_BUDGETS = {
    "ingest write units": 2,
    "consumer write units": 3,
    "SQS messages sent": 1,
    "ingest log bytes": 450,
    "consumer log bytes": 450,
}


def per_webhook(template: SamTemplate, measured: Any = None) -> list[str]:
    """The deterministic part of the output: counted on moto, the same on every run (`measured`: a
    `cost.measure(template)` already taken)."""
    from tools import cost

    measured = measured or cost.measure(template)
    n = measured.webhooks
    figures = {
        "ingest write units": measured.ingest.write_units / n,
        "consumer write units": measured.consumer.write_units / n,
        "SQS messages sent": measured.messages_sent / n,
        "ingest log bytes": measured.ingest.log_bytes / n,
        "consumer log bytes": measured.consumer.log_bytes / n,
    }
    lines = [f"Per webhook, measured on moto over {n} new webhooks (make cost turns these into dollars)"]
    for name, value in figures.items():
        verdict = "ok" if value <= COST_BUDGETS[name] else "OVER BUDGET"
        lines.append(f"  {name:<52} {value:8.1f}   (budget {COST_BUDGETS[name]}) {verdict}")
    # Not the dollars: `make cost` prices these with this bench's CPU figures (docs/cost.md).
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
