"""Rotation of the signing secret by the stack's own rotation function (`ntp rotate --wait`, which calls
Secrets Manager's RotateSecret). Rotation cannot be undone: the stack keeps the new key, and the old one
stays valid for PreviousKeyGraceHours, as after any rotation."""

from __future__ import annotations

import re

from ntp_webhooks.keyring import CURRENT, PENDING, PREVIOUS
from ntp_webhooks.rotation import is_well_formed
from tests.deployed.harness import Run, Sender, Stack, ntp


def test_rotation_makes_a_new_current_key_and_both_keys_verify(stack: Stack, sender: Sender, run: Run) -> None:
    secrets, secret = stack.secrets, stack.output("SigningSecretArn")
    described = secrets.describe_secret(SecretId=secret)
    rotation_function = stack.cloudformation.describe_stack_resource(
        StackName=stack.name, LogicalResourceId="RotationFunction"
    )["StackResourceDetail"]["PhysicalResourceId"]
    assert described.get("RotationEnabled"), "rotation is not enabled on the signing secret"
    assert described.get("RotationLambdaARN", "").endswith(f":function:{rotation_function}"), described
    (old,) = [version for version, stages in described["VersionIdsToStages"].items() if CURRENT in stages]
    old_key = secrets.get_secret_value(SecretId=secret, VersionId=old)["SecretString"]

    result = ntp(stack, "rotate", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    started = re.search(r"new version (\S+)", result.stdout)
    assert started is not None, result.stdout
    new = started.group(1)

    # createSecret stored a value under AWSPENDING, testSecret let it through, finishSecret moved AWSCURRENT
    # to it (Secrets Manager labelled the old version AWSPREVIOUS). No rotation is left in progress: AWSPENDING
    # may stay on the new current version, never on another (the next rotation would refuse to start).
    stages = secrets.describe_secret(SecretId=secret)["VersionIdsToStages"]
    assert new != old
    assert CURRENT in stages[new], stages
    assert PREVIOUS in stages[old], stages
    assert not [version for version, labels in stages.items() if PENDING in labels and CURRENT not in labels], stages
    new_key = secrets.get_secret_value(SecretId=secret, VersionId=new)["SecretString"]
    assert new_key != old_key
    assert is_well_formed(new_key)

    with_new = sender.send(run.delivery("quote.received"), new_key)
    assert with_new.status == 202, with_new
    grace_hours = float(stack.parameter("PreviousKeyGraceHours", "72"))
    with_old = sender.send(run.delivery("quote.received"), old_key)
    assert with_old.status == (202 if grace_hours > 0 else 401), f"{with_old} (PreviousKeyGraceHours {grace_hours})"
