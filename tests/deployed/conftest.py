"""The end-to-end suite against a DEPLOYED stack: it reaches the stack only through its CloudFormation
outputs and parameters, its webhook URL, and the AWS APIs (boto3's default credential, region and
endpoint resolution), so it runs unchanged against AWS and against an emulator.

Run it:

    NTP_E2E_STACK=<stack> python -m pytest tests/deployed -p no:randomly -n 0     (make e2e STACK=<stack>)
    ... -m door      only the front-door tests (a signed delivery is accepted, an unsigned one refused)

Not collected at all when NTP_E2E_STACK is not set, so a plain `pytest` (make test) skips it silently.

tests/deployed has a pytest.ini of its own, so `pytest tests/deployed` takes its rootdir, and with it
the conftest boundary, here: tests/conftest.py (moto's fake credentials, AWS_PROFILE and
AWS_ENDPOINT_URL removed) is never loaded, and the suite sees the environment it was started with.
A run of the whole tree (`pytest`, `pytest tests`), which loads tests/conftest.py, never collects the
suite, NTP_E2E_STACK or not (it says so at the end when the variable is set).

The environment contract:

- `NTP_E2E_STACK` (required): the stack's name.
- AWS access as boto3 resolves it by default: `AWS_PROFILE` or keys, `AWS_REGION` (or
  `AWS_DEFAULT_REGION`, or the profile's region), and `AWS_ENDPOINT_URL` for an emulator. The `ntp`
  commands the suite runs (redrive, replay, rotate) inherit the same environment, with AWS_REGION set
  to the suite's region.
- `NTP_E2E_RESOLVE` (optional): `HOST=ADDRESS[:PORT]`, comma-separated, like curl's --resolve: a
  request to HOST connects to ADDRESS:PORT (the URL's port if none) and still sends the URL's host as
  Host header and TLS server name. HOST may be `*.suffix`, for every name under it:
  `*.lambda-url.us-east-1.localhost.localstack.cloud=127.0.0.1:4566`.
- `NTP_E2E_HTTP_API_TRANSPORT` (optional, HTTP API door only): `https` (default) POSTs to WebhookUrl;
  `invoke` calls the ingest function (output IngestFunctionName) with Lambda Invoke and the event the
  API's route would send: route key and payload format version (2.0) read from the deployed API's
  routes and integrations (API Gateway's GetRoutes, GetIntegrations), the event built by
  devtools.lambda_events; statusCode, headers and body are read from the result. For an emulator that
  serves no HTTP API requests; the HTTP API's own routing and throttling are then not exercised.
- Deadlines, in seconds (defaults fit AWS): `NTP_E2E_PROCESS_TIMEOUT` (180: a consumer processes a
  delivery), `NTP_E2E_ARCHIVE_TIMEOUT` (420: Firehose writes it to the archive bucket; its buffer
  interval is up to 300 s), `NTP_E2E_DLQ_TIMEOUT` (900: a failing record reaches the dead-letter
  queue), `NTP_E2E_VISIBILITY_TIMEOUT` (the order queue's VisibilityTimeout while that happens; default
  ConsumerBatchingWindowSeconds + 15, so that a batch is never visible again while it is processed).

Who runs it needs: cloudformation:DescribeStacks and DescribeStackResource; on the two tables
dynamodb:GetItem, PutItem, UpdateItem, DeleteItem and Scan; on the family queues and DLQs
sqs:GetQueueAttributes, SetQueueAttributes, ReceiveMessage, DeleteMessage, ChangeMessageVisibility and
StartMessageMoveTask; secretsmanager:DescribeSecret, GetSecretValue and RotateSecret on the signing
secret; s3:ListBucket and GetObject on the archive bucket; with `invoke`, lambda:InvokeFunction on the
ingest function and apigateway:GET on the API.

The tests do not depend on their order (shared steps are fixtures); pytest.ini turns pytest-randomly
off so that a run reads in file order.

What the suite changes, and what it leaves:
- Its events have IDs `evt_e2e_<run>_<random>` and entities (orderId, quoteId) of their own
  `<order|quote>_e2e_<run>_<random>`. At the end it waits for the consumers to finish them, then
  deletes their dedup records, `handled#` records (replays' too) and state items. It keeps the records
  of an event it could not see finished (a consumer would write them again), and says so.
- The dead-letter test holds a consumer claim on purpose (an item it writes in the state table), and
  sets the order queue's VisibilityTimeout to NTP_E2E_VISIBILITY_TIMEOUT while its record fails;
  the original value is restored in a finally block. The message it dead-letters is redriven by the
  redrive test (`ntp redrive order`, which moves back every message of the order DLQ, not only the
  suite's), or deleted from the DLQ at the end. The DLQ alarm of the order family may fire
  meanwhile (an SNS notification on a test stack).
- The rotation test rotates the signing secret: rotation cannot be undone. The old key stays valid for
  PreviousKeyGraceHours, as after any rotation. Run the suite on a test stack.
- Archive objects stay (Firehose batches the suite's records with others; they expire with
  ArchiveRetentionDays), as do the functions' log lines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from ntp.cli import Target
from ntp_webhooks.routing import FAMILIES_VARIABLE
from tests.deployed.harness import FrontDoor, Ledger, Run, Sender, Settings, SettingsError, Stack

STACK = os.environ.get("NTP_E2E_STACK", "")
#: tests/conftest.py is loaded: a run of the whole tree (`pytest`, `pytest tests`) under moto's settings.
UNDER_MOTO = "tests.conftest" in sys.modules
if not STACK or UNDER_MOTO:
    collect_ignore_glob = ["*"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "door: through the stack's front door only (run with -m door on either door)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STACK and UNDER_MOTO:
        terminalreporter.write_line(
            f"tests/deployed not run although NTP_E2E_STACK={STACK}: it runs on its own, outside tests/conftest.py "
            "(python -m pytest tests/deployed)"
        )


@pytest.fixture(scope="session")
def settings() -> Settings:
    try:
        return Settings.from_environment(os.environ)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Stack:
    deployed = Stack(settings.stack)
    # The library reads the families as the functions do (EVENT_FAMILIES): the stack's, one queue output each.
    os.environ[FAMILIES_VARIABLE] = ",".join(Target(outputs=deployed.outputs).families)
    return deployed


@pytest.fixture(scope="session")
def run() -> Run:
    return Run()


@pytest.fixture(scope="session")
def ledger(stack: Stack, run: Run, settings: Settings) -> Iterator[Ledger]:
    ledger = Ledger(stack, run)
    yield ledger
    for line in ledger.remove(settings.process_timeout):
        print(f"\ntests/deployed: {line}", file=sys.stderr)


@pytest.fixture(scope="session")
def door(stack: Stack, settings: Settings) -> FrontDoor:
    return FrontDoor(stack, settings)


@pytest.fixture(scope="session")
def sender(stack: Stack, door: FrontDoor, ledger: Ledger) -> Sender:
    return Sender(stack, door, ledger)
