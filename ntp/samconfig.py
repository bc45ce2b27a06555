"""samconfig.toml, read the way `sam` reads it: one config env, `global` values under the command's.

`python -m ntp.samconfig stack-name [ENV]`, `region [ENV]` and `deploy-flags [ENV]` serve the
Makefile: `make deploy` is guided only while the stack does not exist yet.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

#: Relative: the checkout ntp and make run in (its root).
PATH = Path("samconfig.toml")


def value(key: str, env: str = "default", commands: tuple[str, ...] = ("global", "deploy")) -> Any:
    """`key` from `[env.<command>.parameters]`, the first of `commands` that has it."""
    if not PATH.exists():  # ntp run outside a checkout: nothing configured
        return None
    config = tomllib.loads(PATH.read_text()).get(env, {})
    for command in commands:
        found = config.get(command, {}).get("parameters", {}).get(key)
        if found is not None:
            return found
    return None


def stack_name(env: str = "default") -> str:
    return str(value("stack_name", env))


def region(env: str = "default") -> str | None:
    found = value("region", env)
    return None if found is None else str(found)


def stack_exists(env: str = "default") -> bool | None:
    """Whether the env's stack is deployed; None when AWS cannot be asked (no credentials)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cloudformation = boto3.client("cloudformation", region_name=region(env))
        stacks = cloudformation.describe_stacks(StackName=stack_name(env))["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return False
        return None
    except BotoCoreError:
        return None
    return any(s["StackStatus"] != "REVIEW_IN_PROGRESS" for s in stacks)


def main(argv: list[str]) -> int:
    command, env = argv[0], (argv[1] if len(argv) > 1 else "default")
    if command == "stack-name":
        print(stack_name(env))
    elif command == "region":
        print(region(env) or "")
    elif command == "deploy-flags":
        # First deploy: guided (it asks, then saves the answers here). Later: from this file.
        print("--guided" if stack_exists(env) is False else "")
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
