"""`ntp`: send signed events, inspect and operate a deployed stack or the local stack.

Targets: `--local` (a `make run` stack, found through .aws-sam/local-stacks/; `--port` picks one) or
`--stack NAME` (a deployed stack, through its CloudFormation outputs; default from samconfig.toml).
User mistakes end with a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ntp import local_state, samconfig
from ntp.deliveries import DEFAULT_SIGNATURE_HEADER, SAMPLE_DATA, encode, envelope, new_event_id
from ntp_webhooks import __version__
from ntp_webhooks.envelope import EVENT_NAME_PATTERN, EnvelopeError, parse_envelope
from ntp_webhooks.routing import template_name
from ntp_webhooks.signature import sign

SECRET_ENV = "NTP_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a secret


# boto3 (botocore too), ntp.operations and ntp.replay (pydantic's event models) are imported by the commands
# that use them: together they are most of a second of imports, which `ntp sample`, `sign`, `send --url`
# and `send --local` (the local stack's admin endpoint gives its secret) skip.


class UsageError(Exception):
    """Printed as one line; exit status 2."""


def _user_errors() -> tuple[type[Exception], ...]:
    """What `main` prints as one line: UsageError, and OperationError once ntp.operations is imported
    (a command that raised one imported it). An except clause evaluates this when it matches."""
    operations = sys.modules.get("ntp.operations")
    return (UsageError,) if operations is None else (UsageError, operations.OperationError)


def _aws_errors() -> tuple[type[Exception], ...]:
    """botocore's errors, once a command that calls AWS has loaded botocore; before, none (`except ()`
    matches nothing): a command that never loads botocore cannot raise them."""
    exceptions = sys.modules.get("botocore.exceptions")
    return () if exceptions is None else (exceptions.ClientError, exceptions.BotoCoreError)


@dataclass
class Target:
    """Where a command acts: the outputs of a stack plus how to reach its AWS APIs."""

    outputs: dict[str, str]
    endpoint_url: str | None = None
    region: str | None = None
    admin_url: str | None = None
    stack_name: str | None = None

    def client(self, service: str) -> Any:
        import boto3

        if self.endpoint_url is None:
            return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local stack accepts any credentials
        )

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None

    def release(self) -> str:
        """The release the stack runs: a local stack runs this checkout's code; a deployed one says it
        in its tag (`make deploy` sets it)."""
        if self.is_local or self.stack_name is None:
            return f"{__version__} (this checkout)"
        from ntp import operations

        found = operations.stack_release(self.client("cloudformation"), self.stack_name)
        return found or "unknown (deployed without make deploy's version tag)"

    @property
    def families(self) -> tuple[str, ...]:
        """The stack's event families, lower case: one `<Family>QueueUrl` output each."""
        found = (re.fullmatch(r"([A-Z]\w*?)QueueUrl", key) for key in self.outputs)
        return tuple(m[1].lower() for m in found if m and not m[1].endswith("DeadLetter"))

    def queue_urls(self) -> dict[str, str]:
        return {family: self.output(f"{template_name(family)}QueueUrl") for family in self.families}

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise UsageError(f"the stack has no output {key}: is it deployed from this template version?")
        return self.outputs[key]


def default_stack_name() -> str:
    return samconfig.stack_name(os.environ.get("SAM_CONFIG_ENV", "default"))


def resolve_target(args: argparse.Namespace) -> Target:
    if args.local:
        try:
            state = local_state.pick(args.port)
        except local_state.NoLocalStack as exc:
            raise UsageError(str(exc)) from None
        return Target(
            outputs=state["outputs"],
            endpoint_url=state["endpoint_url"],
            region=state["region"],
            admin_url=state["admin_url"],
        )
    env = os.environ.get("SAM_CONFIG_ENV", "default")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or samconfig.region(env)
    if not region:
        raise UsageError("no AWS region: set AWS_REGION, or `region` in samconfig.toml") from None
    stack_name = args.stack or default_stack_name()
    import boto3
    from botocore.exceptions import NoCredentialsError

    from ntp import operations

    try:
        cloudformation = boto3.client("cloudformation", region_name=region)
        outputs = operations.stack_outputs(cloudformation, stack_name)
    except NoCredentialsError:
        running = [int(state["port"]) for state in local_state.running()]
        if running:
            where = f" (port {running[0]})" if len(running) == 1 else f" (ports {', '.join(map(str, running))})"
            raise UsageError(
                f"no AWS credentials for a deployed stack; a local stack is running{where}: add --local"
            ) from None
        raise UsageError(
            "no AWS credentials: configure them (aws configure), or start `make run` and use --local"
        ) from None
    return Target(outputs=outputs, region=region, stack_name=stack_name)


# --- send / sign ----------------------------------------------------------------------------------


def load_payload(
    source: str, keep_id: bool, keep_timestamp: bool, *, unregistered: str = "warn"
) -> tuple[dict[str, Any], bytes | None]:
    """(payload, the exact bytes to send or None to serialize the payload), from a sample event name
    (`order.shipped`, always a fresh id and timestamp) or a JSON file (fresh id and timestamp unless
    kept; kept both, the file is sent byte for byte). Nothing invalid gets this far. An event name
    that is not documented is sent with a warning (`unregistered="warn"`) or refused ("refuse")."""
    path = Path(source)
    if path.exists():
        return _file_payload(path, keep_id, keep_timestamp)
    if source.endswith(".json") or "/" in source:
        raise UsageError(f"no such file: {source}")
    if keep_id or keep_timestamp:
        raise UsageError("--keep-id and --keep-timestamp apply to a file; a sample always gets a fresh id")
    if not re.fullmatch(EVENT_NAME_PATTERN, source):
        raise UsageError(f"{source!r} is neither an event name ({', '.join(SAMPLE_DATA)}, ...) nor a file")
    if source not in SAMPLE_DATA:
        close = difflib.get_close_matches(source, SAMPLE_DATA, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        if unregistered == "refuse":
            # On a deployed stack it would be projected as a state item of its own: a typo is data.
            raise UsageError(
                f"{source} is not a documented event type{hint}; to send it to a deployed stack anyway, "
                "add --unregistered"
            )
        print(
            f"ntp: warning: {source} is not a documented event type{hint}; sending it with empty data", file=sys.stderr
        )
    return envelope(source), None


def _file_payload(path: Path, keep_id: bool, keep_timestamp: bool) -> tuple[dict[str, Any], bytes | None]:
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not an event file")
    try:
        raw = path.read_bytes()
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(payload, dict):
        raise UsageError(f"{path} must hold a JSON object")
    body: bytes | None = raw if keep_id and keep_timestamp else None
    if not keep_id:
        payload["id"] = new_event_id()
    if not keep_timestamp:
        payload["timestamp"] = envelope()["timestamp"]
    try:  # the ingest function's own rules, before anything is sent
        parse_envelope(body if body is not None else encode(payload))
    except EnvelopeError as exc:
        raise UsageError(f"{path}: {exc.reason}") from None
    return payload, body


def find_secret(args: argparse.Namespace, target: Target | None) -> str:
    if args.secret is not None:
        if not args.secret:
            raise UsageError("--secret is empty: pass the signing secret, or leave --secret out to use the stack's")
        return str(args.secret)
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    if target is None:
        raise UsageError(f"no secret: pass --secret, set {SECRET_ENV}, or name the stack with --local or --stack")
    try:
        return _current_secret(target)
    except _aws_errors() as exc:
        raise UsageError(f"cannot read the stack's signing secret: {exc}") from None


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> tuple[int, str]:
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - user's URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(f"cannot reach {url}: {reason}") from None


def cmd_send(args: argparse.Namespace) -> int:
    # With --url, a stack is consulted only when named: its secret is then the default.
    target = resolve_target(args) if (args.local or args.stack or not args.url) else None
    url = args.url or (target.output("WebhookUrl") if target else "")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"not an http(s) URL: {url!r}")
    # Keeping a file's id means resending the event as written: its timestamp too, byte for byte.
    payload, exact = load_payload(
        args.event,
        args.keep_id,
        args.keep_timestamp or args.keep_id,
        unregistered="warn" if args.local or args.unregistered else "refuse",
    )
    secret = find_secret(args, target)
    deliveries = 2 if args.duplicate else 1
    worst = 0
    for _ in range(args.repeat):
        body = exact if exact is not None else encode(payload)
        for attempt in range(deliveries):
            headers = {"Content-Type": "application/json", args.header: sign(body, secret.encode())}
            status, text = post(url, body, headers)
            label = "duplicate " if attempt else ""
            print(f"{label}{payload['event']} {payload['id']} -> {status} {text}")
            worst = max(worst, 0 if 200 <= status < 300 else 1)
            if status == 400 and "older than" in text:
                print(
                    "ntp: the receiver refuses events older than its EventMaxAgeHours (replay protection); "
                    "to send this event anyway, leave out --keep-id and --keep-timestamp: it then goes with "
                    "a fresh id and timestamp",
                    file=sys.stderr,
                )
        if args.save:
            args.save.write_bytes(body)
            print(f"saved the body sent to {args.save}: resend it with `ntp send {args.save} --keep-id`")
        if not args.keep_id:
            payload, exact = {**payload, "id": new_event_id()}, None
    return worst


def cmd_sample(args: argparse.Namespace) -> int:
    """A sample event to start a file from: fresh id and timestamp, so it can be sent as written."""
    if args.event not in SAMPLE_DATA:
        close = difflib.get_close_matches(args.event, SAMPLE_DATA, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (one of: {', '.join(SAMPLE_DATA)})"
        raise UsageError(f"{args.event} is not a documented event type{hint}")
    print(json.dumps(envelope(args.event), indent=2))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    target = resolve_target(args) if (args.local or args.stack) else None
    secret = find_secret(args, target)  # before stdin is read: a wrong secret needs no body
    body = sys.stdin.buffer.read()
    print(f"{args.header}: {sign(body, secret.encode())}")
    return 0


# --- status / redrive -----------------------------------------------------------------------------


def queue_depths(target: Target) -> dict[str, tuple[int, int, int]]:
    """family -> (visible, in flight, dead-lettered)."""
    sqs = target.client("sqs")
    depths = {}
    for family in target.families:
        title = template_name(family)
        counts = []
        for key in (f"{title}QueueUrl", f"{title}DeadLetterQueueUrl"):
            attributes = sqs.get_queue_attributes(QueueUrl=target.output(key), AttributeNames=["All"])["Attributes"]
            counts.append(
                (
                    int(attributes["ApproximateNumberOfMessages"]),
                    int(attributes["ApproximateNumberOfMessagesNotVisible"]),
                )
            )
        depths[family] = (counts[0][0], counts[0][1], counts[1][0] + counts[1][1])
    return depths


def cmd_status(args: argparse.Namespace) -> int:
    from ntp.operations import read_state

    target = resolve_target(args)
    try:
        release = target.release()
        print(f"release {release}" + ("" if release.startswith(__version__) else f" (this ntp: {__version__})"))
        print(f"{'family':<10} {'queued':>7} {'in flight':>10} {'dead':>6}")
        for family, (visible, in_flight, dead) in queue_depths(target).items():
            print(f"{family:<10} {visible:>7} {in_flight:>10} {dead:>6}")
        for entity, entity_id in (("order", args.order), ("quote", args.quote)):
            if entity_id:
                item = read_state(target.client("dynamodb"), target.output("StateTableName"), entity, entity_id)
                if item and item.get("archiveHour"):
                    item["data"] = _newest_data(target, item)
                print(
                    json.dumps(item, indent=2, default=str) if item else f"no {entity} {entity_id!r} in the projection"
                )
    except _aws_errors() as exc:
        raise UsageError(f"cannot read the stack: {exc}") from None
    return 0


def _newest_data(target: Target, item: dict[str, Any]) -> Any:
    """The newest event's `data`, read from its archive record (the state item keeps no body)."""
    from ntp_webhooks.archive import object_prefixes, records_in

    prefixes = object_prefixes(item["archiveHour"])  # Firehose files it under the hour its buffer began
    for record in records_in(target.client("s3"), target.output("ArchiveBucketName"), prefixes):
        if record.event_id == item["lastEventId"]:
            return json.loads(record.body).get("data")
    return "(not in the archive yet: Firehose writes its buffer every few minutes)"


def redrive(target: Target, family: str) -> str:
    """Move a family's dead letters back to its queue. Returns what was done, for the user."""
    from ntp import operations

    return operations.redrive(target.client("sqs"), target.output(f"{template_name(family)}DeadLetterQueueUrl"))


def cmd_redrive(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    if args.family not in target.families:
        raise UsageError(f"no family {args.family!r} in the stack (its families: {', '.join(target.families)})")
    try:
        print(redrive(target, args.family))
    except _aws_errors() as exc:
        raise UsageError(f"redrive failed: {exc}") from None
    return 0


# --- key rotation ---------------------------------------------------------------------------------


def local_admin(target: Target, action: str) -> dict[str, Any]:
    status, text = post(f"{target.admin_url}/{action}", b"{}", {"Content-Type": "application/json"}, timeout=60)
    if status != 200:
        raise UsageError(f"local stack refused {action}: {text}")
    result: dict[str, Any] = json.loads(text)
    return result


def cmd_rotate(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    if target.is_local:
        print(json.dumps(local_admin(target, "rotate")))
        return 0
    from ntp import operations

    secrets = target.client("secretsmanager")
    token = operations.start_rotation(secrets, target.output("SigningSecretArn"))
    print(f"rotation started: new version {token}")
    if args.wait:
        operations.wait_until_current(secrets, target.output("SigningSecretArn"), token)
        print("rotation finished: the new key is AWSCURRENT, the old one AWSPREVIOUS for its grace period")
    return 0


def cmd_secret(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    print(_current_secret(target))
    return 0


def _current_secret(target: Target) -> str:
    if target.is_local:  # the stack reads it from its Secrets Manager: no boto3 here, ~0.5 s of CPU less
        return str(local_admin(target, "secret")["secret"])
    value: str = target.client("secretsmanager").get_secret_value(
        SecretId=target.output("SigningSecretArn"), VersionStage="AWSCURRENT"
    )["SecretString"]
    return value


def cmd_install_secret(args: argparse.Namespace) -> int:
    from ntp import operations

    target = resolve_target(args)
    # The same rule for both routes (operations.install_secret refuses surrounding whitespace); from
    # stdin only the line ending that ends the input is not part of the value.
    value = args.value if args.value is not None else _one_line_ending_removed(sys.stdin.read())
    for warning in operations.secret_warnings(value):
        print(f"ntp: warning: {warning}", file=sys.stderr)
    version = operations.install_secret(target.client("secretsmanager"), target.output("SigningSecretArn"), value)
    print(f"installed as AWSCURRENT (version {version}); the previous key stays valid for its grace period")
    return 0


def _one_line_ending_removed(text: str) -> str:
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            return text[: -len(ending)]
    return text


def cmd_emergency_rotate(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    if target.is_local:
        print(json.dumps(local_admin(target, "emergency-rotate")))
        return 0
    from ntp import operations

    result = operations.emergency_rotate(
        target.client("secretsmanager"),
        target.client("lambda"),
        target.output("SigningSecretArn"),
        target.output("IngestFunctionName"),
    )
    print(json.dumps(result))
    print("the leaked key is refused now; give NowToPrint the new key (docs/rotation.md, 'Emergency rotation')")
    return 0


# --- replay ---------------------------------------------------------------------------------------


def _moment(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not an ISO 8601 time (2026-11-30T08:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _archived(target: Target, args: argparse.Namespace, since: datetime | None, until: datetime | None) -> list[Any]:
    """The archived events `--event-id`/`--event` name in the range, saying how many hours it lists and,
    for a long range, how far it got (`ntp replay` and `ntp pull`)."""
    from ntp import replay

    prefixes = replay.listing(since)
    print(
        f"listing {len(prefixes)} hour{'' if len(prefixes) == 1 else 's'} of the archive"
        if since
        else "listing the whole archive (add --since to read less)",
        file=sys.stderr,
    )
    every = max(1, len(prefixes) // 10) if len(prefixes) > 24 else 0

    def listed(done: int, total: int, found: int) -> None:
        if every and done and (done % every == 0 or done == total):
            print(f"listed {done} of {total} hours ({_events(found)} found)", file=sys.stderr)

    return replay.find(
        target.client("s3"),
        target.output("ArchiveBucketName"),
        event_ids=args.event_id or (),
        since=since,
        until=until,
        event_type=args.event,
        progress=listed,
    )


def cmd_replay(args: argparse.Namespace) -> int:
    if not args.event_id and not args.since:
        raise UsageError("name the events: --event-id ID ... or --since ISO [--until ISO] [--event TYPE]")
    from ntp import replay

    known = replay.handler_names()
    unknown = sorted(set(args.handler) - known)
    if unknown:
        raise UsageError(f"unknown handler {', '.join(unknown)} (known: {', '.join(sorted(known)) or 'none'})")
    since, until = _moment(args.since, "--since"), _moment(args.until, "--until")
    try:  # before any AWS call: a range or a type that cannot be meant ends here, in one line
        replay.check_range(since, until, datetime.now(UTC), _retention_days(args))
        if args.event:
            replay.check_event_type(args.event, args.handler)
    except replay.RangeError as exc:
        raise UsageError(str(exc)) from None
    target = resolve_target(args)
    matched = _archived(target, args, since, until)
    missing = sorted(set(args.event_id or ()) - {r.event_id for r in matched})
    for event_id in missing:
        print(f"ntp: not in the archive: {event_id}", file=sys.stderr)
    # Only what would run: an event none of the named handlers subscribes to runs nothing.
    records = [r for r in matched if replay.subscribed(args.handler, r.event_type)]
    skipped = len(matched) - len(records)
    handlers = ", ".join(sorted(set(args.handler)))
    not_subscribed = f"; {_events(skipped)} skipped: {handlers} not subscribed" if skipped else ""
    if not records:
        print("nothing in the archive matches" + not_subscribed)
        return 1
    if args.dry_run:
        for record in records:
            print(f"would replay {record.event_type} {record.event_id} (received {record.received_at})")
        print(f"{_events(len(records))} would be replayed into {handlers}{not_subscribed}")
        return 0
    step = max(1, len(records) // 10)

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            print(f"replayed {done} of {total}", file=sys.stderr)

    queues = target.queue_urls()
    sent = list(replay.send(target.client("sqs"), queues, records, args.handler, progress=progress))
    print(
        f"replayed {_events(len(sent))} into {handlers}"
        + (f"; {len(missing)} not in the archive" if missing else "")
        + not_subscribed
        + " (the consumers log each as 'event replayed')"
    )
    return 1 if missing else 0


def _retention_days(args: argparse.Namespace) -> int:
    """`--retention-days`, else the ArchiveRetentionDays samconfig.toml deploys, else the template's."""
    if args.retention_days is not None:
        if args.retention_days < 1:
            raise UsageError("--retention-days must be at least 1")
        return int(args.retention_days)
    if not args.local:
        overrides = samconfig.value("parameter_overrides", os.environ.get("SAM_CONFIG_ENV", "default"))
        for pair in shlex.split(overrides if isinstance(overrides, str) else " ".join(overrides or [])):
            name, _, value = pair.partition("=")
            if name == "ArchiveRetentionDays" and value.isdigit():
                return int(value)
    from ntp import replay

    return replay.RETENTION_DAYS


# --- pull: real archived events to the laptop ------------------------------------------------------


def cmd_pull(args: argparse.Namespace) -> int:
    """Archived events of a deployed stack as files for `ntp send`, or sent into the local stack."""
    if not args.event_id and not args.since:
        raise UsageError("name the events: --event-id ID ... or --since ISO [--until ISO] [--event TYPE]")
    if bool(args.out) == bool(args.to_local):
        raise UsageError("say where they go: --out DIR (files for `ntp send`) or --to-local (the local stack)")
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    from ntp import replay

    since, until = _moment(args.since, "--since"), _moment(args.until, "--until")
    try:  # before any AWS call, as `ntp replay`
        replay.check_range(since, until, datetime.now(UTC), _retention_days(args))
    except replay.RangeError as exc:
        raise UsageError(str(exc)) from None
    local = resolve_target(argparse.Namespace(local=True, port=args.port, stack=None)) if args.to_local else None
    source = resolve_target(argparse.Namespace(local=False, port=None, stack=args.stack))
    records = _archived(source, args, since, until)
    if len(records) > args.limit:
        raise UsageError(f"{_events(len(records))} match, more than --limit {args.limit}: narrow the range")
    missing = sorted(set(args.event_id or ()) - {r.event_id for r in records})
    for event_id in missing:
        print(f"ntp: not in the archive: {event_id}", file=sys.stderr)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for record in records:  # the exact bytes received: `ntp send FILE --keep-id` sends them as they were
            # The sender's ID names the file: never a path (`../x`), whatever it holds.
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", record.event_id).lstrip(".") or "event"
            (args.out / f"{name}.json").write_bytes(record.body.encode())
        print(f"wrote {_events(len(records))} to {args.out} (send one: ntp send FILE --local)")
        return 1 if missing else 0
    assert local is not None
    url, secret = local.output("WebhookUrl"), _current_secret(local)
    worst = 0
    for done, record in enumerate(records, 1):
        body = record.body.encode()
        if args.fresh:  # a new ID and now: past the local stack's dedup record and its age limit
            body = encode({**json.loads(body), "id": new_event_id(), "timestamp": envelope()["timestamp"]})
        headers = {"Content-Type": "application/json", DEFAULT_SIGNATURE_HEADER: sign(body, secret.encode())}
        status, text = post(url, body, headers)
        print(f"{done}/{len(records)} {record.event_type} {record.event_id} -> {status} {text}")
        worst = max(worst, 0 if 200 <= status < 300 else 1)
        if status == 400 and "older than" in text:
            print(
                "ntp: older than the local stack accepts: add --fresh to send it with a new ID and time",
                file=sys.stderr,
            )
    return 1 if missing else worst


def _pull_arguments(commands: Any) -> None:
    pull = commands.add_parser(
        "pull",
        help="Copy a deployed stack's archived events to the laptop: files, or into the local stack.",
        description="Copy a deployed stack's archived events (by ID, or received in a time range) to files "
        "for `ntp send`, or send them into the local stack re-signed with its secret.",
    )
    pull.add_argument("--stack", help="the deployed stack to read (default: samconfig.toml's stack_name)")
    pull.add_argument("--event-id", action="append", metavar="ID", help="an archived event (repeatable)")
    pull.add_argument("--since", metavar="ISO", help="events received from this time (UTC if no zone)")
    pull.add_argument("--until", metavar="ISO", help="... up to this time (default: now)")
    pull.add_argument("--event", metavar="TYPE", help="only this event type (order.confirmed)")
    pull.add_argument("--limit", type=int, default=100, help="refuse more events than this (default 100)")
    pull.add_argument("--retention-days", type=int, metavar="N", help="the stack's ArchiveRetentionDays")
    pull.add_argument("--out", type=Path, metavar="DIR", help="write each event's body to DIR/<id>.json")
    pull.add_argument("--to-local", action="store_true", help="send them into the local stack (make run)")
    pull.add_argument("--port", type=int, help="the local stack's port, when several run")
    pull.add_argument("--fresh", action="store_true", help="with --to-local: a new ID and timestamp for each")
    pull.set_defaults(run=cmd_pull, local=False)


def _replay_arguments(replay_cmd: argparse.ArgumentParser) -> None:
    replay_cmd.add_argument("--event-id", action="append", metavar="ID", help="an archived event (repeatable)")
    replay_cmd.add_argument("--since", metavar="ISO", help="events received from this time (UTC if no zone)")
    replay_cmd.add_argument("--until", metavar="ISO", help="... up to this time (default: now)")
    replay_cmd.add_argument("--event", metavar="TYPE", help="only this event type (order.confirmed)")
    replay_cmd.add_argument(
        "--handler", action="append", required=True, metavar="NAME", help="a handler's registry name (repeatable)"
    )
    replay_cmd.add_argument("--dry-run", action="store_true", help="list what would be replayed; send nothing")
    retention_days = replay_cmd.add_argument(
        "--retention-days",
        type=int,
        metavar="N",
        help="the stack's ArchiveRetentionDays, if not samconfig.toml's or %(template_default)s: --since "
        "may not be older",
    )
    # argparse fills %(...)s from the action's attributes, and only when it prints the help.
    vars(retention_days)["template_default"] = _ReplayRetentionDays()
    replay_cmd.set_defaults(run=cmd_replay)


class _ReplayRetentionDays:
    """ntp.replay.RETENTION_DAYS as text, read when the help is printed, not by every command."""

    def __str__(self) -> str:
        from ntp import replay

        return str(replay.RETENTION_DAYS)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="ntp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument("--version", action="version", version=f"ntp {__version__}")
    commands = root.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text)
        where = command.add_mutually_exclusive_group()
        where.add_argument("--local", action="store_true", help="the local stack started by `make run`")
        where.add_argument("--stack", help="a deployed stack's name (default: samconfig.toml's stack_name)")
        command.add_argument("--port", type=int, help="with --local: the HTTP port of the stack, when several run")
        return command

    send = add("send", "Sign and POST an event to a webhook URL (like `stripe trigger`).")
    send.add_argument("event", help=f"a sample event name ({', '.join(SAMPLE_DATA)}) or a JSON file")
    send.add_argument("--url", help="webhook URL (default: the stack's WebhookUrl)")
    send.add_argument("--secret", help=f"signing secret (default: ${SECRET_ENV}, then the stack's secret)")
    send.add_argument("--header", default=DEFAULT_SIGNATURE_HEADER, help="signature header name")
    send.add_argument(
        "--keep-id",
        action="store_true",
        help="a file: send its id and timestamp as written (resending it is then a duplicate, 200)",
    )
    send.add_argument("--keep-timestamp", action="store_true", help="a file: keep its timestamp but send a fresh id")
    send.add_argument("--repeat", type=int, default=1, help="send N events (fresh ids unless --keep-id)")
    send.add_argument("--duplicate", action="store_true", help="deliver each event twice (exercises dedup)")
    send.add_argument(
        "--save", type=Path, metavar="FILE", help="write the exact body sent to FILE (the last one, with --repeat)"
    )
    send.add_argument(
        "--unregistered",
        action="store_true",
        help="send an event name that is not documented to a deployed stack (--local only warns)",
    )
    send.set_defaults(run=cmd_send)

    sample = commands.add_parser(
        "sample", help="Print a sample event (fresh id and timestamp), to start your own event file from."
    )
    sample.add_argument("event", help=f"an event name: {', '.join(SAMPLE_DATA)}")
    sample.set_defaults(run=cmd_sample)

    sign_cmd = add("sign", "Print the signature header for the body on stdin.")
    sign_cmd.add_argument("--secret", help=f"signing secret (default: ${SECRET_ENV}, then the stack's secret)")
    sign_cmd.add_argument(
        "--header", default=DEFAULT_SIGNATURE_HEADER, help=f"header name to print (default {DEFAULT_SIGNATURE_HEADER})"
    )
    sign_cmd.set_defaults(run=cmd_sign)

    status = add("status", "Queue and DLQ depths, and the projection of an order or quote.")
    status.add_argument("--order", help="an orderId to show")
    status.add_argument("--quote", help="a quoteId to show")
    status.set_defaults(run=cmd_status)

    redrive_cmd = add("redrive", "Move a family's dead-letter messages back to its queue.")
    # Any case: the DLQ alarms name the family as template.yaml does (`ntp redrive Order`).
    redrive_cmd.add_argument("family", type=str.lower, help="quote, order, workflow or a family of yours")
    redrive_cmd.set_defaults(run=cmd_redrive)

    rotate = add("rotate", "Rotate the signing secret now (scheduled rotations run by themselves).")
    rotate.add_argument("--wait", action="store_true", help="wait until the new key is AWSCURRENT")
    rotate.set_defaults(run=cmd_rotate)

    secret_cmd = add("secret", "Print the current signing secret (AWSCURRENT), e.g. for curl and openssl.")
    secret_cmd.set_defaults(run=cmd_secret)

    install = add("install-secret", "Install the secret NowToPrint issued as AWSCURRENT (value on stdin).")
    install.add_argument("--value", help="the secret (prefer stdin: it stays out of shell history)")
    install.set_defaults(run=cmd_install_secret)

    _replay_arguments(add("replay", "Re-run archived events through the named handlers (only them, once more)."))
    _pull_arguments(commands)
    emergency = add("emergency-rotate", "After a leak: rotate, refuse the old key at once, drop cached keys.")
    emergency.set_defaults(run=cmd_emergency_rotate)
    return root


# --- entry point ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "repeat", 1) < 1:
        print("ntp: --repeat must be at least 1", file=sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except _user_errors() as exc:
        print(f"ntp: {exc}", file=sys.stderr)
        return 2
    except _aws_errors() as exc:
        print(f"ntp: AWS call failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run() -> None:  # console-script entry point
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `ntp sample ... | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    raise SystemExit(code)


def _events(count: int) -> str:
    return f"{count} event" + ("" if count == 1 else "s")
