"""`python -m devtools.local_stack` (`make run`): start the local stack, print where everything is,
stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, cast

from devtools.local_stack.functions import FunctionsNotImported, TimestampedLog
from devtools.local_stack.stack import DevStack
from devtools.sam_template import REPO_ROOT, SamTemplate, partner_dir
from ntp.deliveries import LOCAL_DEV_SECRET

LOG_DIR = REPO_ROOT / ".aws-sam"

DOORS = {
    "HttpApi": "API Gateway HTTP API, only POST /webhooks routed",
    "FunctionUrl": "function URL, every request reaches the function",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or ""), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")), help="HTTP API port")
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", "4566")))
    parser.add_argument(
        "--retry-delay",
        type=int,
        default=2,
        help="seconds before a failed record is retried (on AWS: its queue's VisibilityTimeout in the template)",
    )
    parser.add_argument(
        "--reload", action="store_true", help="re-import the functions when their code changes; AWS state stays"
    )
    parser.add_argument("--template", type=Path, default=None, help="another SAM template (default: template.yaml)")
    parser.add_argument(
        "--front-door",
        choices=("HttpApi", "FunctionUrl"),
        default=None,
        help="the template's FrontDoor parameter (default: its default, HttpApi: only POST /webhooks is routed)",
    )
    args = parser.parse_args(argv)

    path = LOG_DIR / f"local-stack-{args.port}.log"  # one per stack, appended run after run with a separator
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        log = cast(TextIO, TimestampedLog(file))  # file-like: what the functions' output is written to
        started = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"===== local stack started {started}, port {args.port}, moto port {args.moto_port} =====\n")
        stack = DevStack(
            host=args.host,
            port=args.port,
            moto_port=args.moto_port,
            retry_delay=args.retry_delay,
            log=log,
            reload=args.reload,
            template=SamTemplate(args.template) if args.template else None,
            parameter_overrides={"FrontDoor": args.front_door} if args.front_door else None,
        )
        try:
            stack.start()
        except OSError as exc:
            stack.stop()
            hint = "another one running? try: make run ARGS='--port 3001 --moto-port 4567'"
            print(f"local stack: cannot start: {exc} ({hint})")
            return 2
        except FunctionsNotImported as exc:  # the partner's module: one line, as `--reload` says it
            stack.stop()
            print(f"local stack: cannot start: the functions' code does not import: {exc}")
            return 2
        stack.say(f"NowToPrint webhook receiver, local stack ({Path(stack.template.path).name})")
        stack.say(f"  webhook URL     {stack.webhook_url}   ({stack.front_door}: {DOORS[stack.front_door]})")
        stack.say(f"  signing secret  {LOCAL_DEV_SECRET}")
        stack.say(f"  AWS endpoint    {stack.endpoint_url}   (moto; any credentials)")
        stack.say(f"  your handlers   {shown(partner_dir(stack.template))}/business_logic.py")
        stack.say(f"  function logs   {path.relative_to(REPO_ROOT)}   (your handlers' output and logs too)")
        visibility = sorted({mapping.visibility_timeout for mapping in stack.mappings.values()})
        stack.say(
            f"  failed records  back after {args.retry_delay} s (--retry-delay; on AWS after the queues' "
            f"VisibilityTimeout, {'/'.join(map(str, visibility))} s)"
        )
        if args.reload:
            stack.say("  code reload     on: edits to your handlers, functions/ and layers/ take effect, state is kept")
        for resource, why in stack.skipped.items():
            stack.say(f"  not emulated    {resource}: {why}")
        stack.say("Send an event from another terminal:")
        stack.say("  .venv/bin/ntp send order.created --local      (or: make send TARGET=--local EVENT=quote.received)")
        stack.say("Ctrl-C stops everything.")
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
        stack.say("\nstopping...")
        stack.stop()
        print("stopped: moto server, HTTP API and pollers are down")
    return 0


def shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


if __name__ == "__main__":
    raise SystemExit(main())
