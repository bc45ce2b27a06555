"""Each function's AWS calls, checked against its own execution role as template.yaml defines it
(docs/architecture.md, "Least privilege, checked"). The e2e tests record every call (`CallRecorder`;
`devtools.lambda_events.acting_as` says which function calls) and `Ledger.check` decides each one as
IAM would: actions case-insensitive, resources case-sensitive, `*` and `?` as wildcards, an explicit
Deny first; conditions, KMS grants, resource policies, boundaries and SCPs are not modelled.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devtools.lambda_events import acting_function
from devtools.provision import ACCOUNT_ID, Stack
from devtools.sam_template import SamTemplate

RUNTIME_POLICY = "AWSLambdaBasicExecutionRole"
#: The managed policies template.yaml attaches, as AWS publishes them.
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    RUNTIME_POLICY: [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
}
_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


@dataclass(frozen=True)
class Call:
    function: str  # logical ID
    action: str  # IAM action, e.g. "dynamodb:PutItem"
    resource: str  # ARN the call acts on ("*" for account-level actions)

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource}"


def resource_arn(service: str, operation: str, params: dict[str, Any], region: str) -> str:
    """The ARN IAM authorizes a call on, from its parameters (the rule for each call the functions make)."""
    prefix = f"arn:aws:{service}:{region}:{ACCOUNT_ID}"
    if service == "dynamodb" and ("TableName" in params or len(params.get("RequestItems", ())) == 1):
        name = params.get("TableName") or next(iter(params["RequestItems"]))  # BatchWriteItem: one table
        return name if name.startswith("arn:") else f"{prefix}:table/{name}"
    if service == "sqs" and "QueueUrl" in params:
        account, name = params["QueueUrl"].rstrip("/").split("/")[-2:]
        return f"arn:aws:sqs:{region}:{account}:{name}"
    if service == "secretsmanager" and "SecretId" in params:
        secret = params["SecretId"]
        return secret if secret.startswith("arn:") else f"{prefix}:secret:{secret}"
    if service == "firehose" and "DeliveryStreamName" in params:
        return f"{prefix}:deliverystream/{params['DeliveryStreamName']}"
    if service == "sns" and "TopicArn" in params:
        return str(params["TopicArn"])
    if service == "ssm" and ("Name" in params or "Path" in params):
        return f"{prefix}:parameter/{str(params.get('Name') or params['Path']).lstrip('/')}"
    raise ValueError(f"no resource rule for {service}:{operation}: add one to tools/permissions.resource_arn")


@dataclass
class CallRecorder:
    """botocore `before-parameter-build` hook (once per API call, not per retry attempt)."""

    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        function = acting_function()
        if function is None:  # the tests' and the local stack's own calls
            return
        service = model.service_model.signing_name
        call = Call(
            function, f"{service}:{model.name}", resource_arn(service, model.name, params, context["client_region"])
        )
        with self._lock:
            self.calls.append(call)

    def take(self) -> list[Call]:
        with self._lock:
            taken, self.calls = self.calls, []
        return taken


@dataclass(frozen=True)
class Statement:
    function: str
    name: str  # where it is written: "<role or function>/<policy>/<Sid or index>"
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def action_matching(self, action: str) -> str | None:
        return next((a for a in self.actions if _wildcard(a, case_sensitive=False).fullmatch(action)), None)

    def covers(self, resource: str) -> bool:
        return any(_resource_matches(pattern, resource) for pattern in self.resources)


def _wildcard(pattern: str, *, case_sensitive: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, 0 if case_sensitive else re.IGNORECASE)


def _resource_matches(pattern: str, resource: str) -> bool:
    if _wildcard(pattern, case_sensitive=True).fullmatch(resource):
        return True
    # A secret named without its ARN: IAM authorizes the secret's full ARN (name plus a random suffix).
    named = ":secret:" in resource and not _SECRET_SUFFIX.search(resource)
    return named and _wildcard(_SECRET_SUFFIX.sub("", pattern), case_sensitive=True).fullmatch(resource) is not None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(function: str, where: str, document: dict[str, Any]) -> list[Statement]:
    statements = []
    for index, raw in enumerate(as_list(document.get("Statement", []))):
        unsupported = {"NotAction", "NotResource", "NotPrincipal"} & set(raw)
        if unsupported:
            raise ValueError(f"{where}: {sorted(unsupported)} are not modelled by tools/permissions.py")
        statements.append(
            Statement(
                function=function,
                name=f"{where}/{raw.get('Sid', index)}",
                effect=raw["Effect"],
                actions=tuple(as_list(raw["Action"])),
                resources=tuple(str(r) for r in as_list(raw["Resource"])),
            )
        )
    return statements


def _managed(function: str, where: str, arn: str, unresolved: set[str]) -> list[Statement]:
    name = arn.rsplit("/", 1)[-1]
    if name not in MANAGED_POLICIES:
        unresolved.add(f"{function}: managed policy {arn} (its statements are not known here)")
        return []
    return _statements(function, f"{where}/{name}", {"Statement": MANAGED_POLICIES[name]})


@functools.cache
def _policy_templates() -> Any:
    from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor

    return PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())


def role_statements(template: SamTemplate, stack: Stack, function: str, unresolved: set[str]) -> list[Statement]:
    """The statements of the function's execution role, resolved in `stack`."""
    props = template.resources[function]["Properties"]
    role = props.get("Role")
    if role is not None:
        role_id = role["Fn::GetAtt"][0] if isinstance(role, dict) else str(role).split(".", 1)[0]
        role_props = stack.resolve(template.resources[role_id]["Properties"])
        found = [_managed(function, role_id, arn, unresolved) for arn in role_props.get("ManagedPolicyArns", [])]
        for policy in role_props.get("Policies", []):
            found.append(_statements(function, f"{role_id}/{policy['PolicyName']}", policy["PolicyDocument"]))
        found += _attached(template, stack, function, role_id)
        return [s for group in found for s in group]
    # SAM's generated role: the basic execution policy plus each entry of Policies.
    templates = _policy_templates()
    found = [_managed(function, f"{function}Role", RUNTIME_POLICY, unresolved)]
    found += _attached(template, stack, function, f"{function}Role")
    for index, policy in enumerate(as_list(props.get("Policies", []))):
        where = f"{function}Role/Policies[{index}]"
        if isinstance(policy, dict) and len(policy) == 1 and templates.has(next(iter(policy))):
            (name, parameters), *_ = policy.items()
            expanded = templates.convert(name, stack.resolve(parameters) or {})
            found.append(_statements(function, f"{where}:{name}", stack.resolve(expanded)))
        elif isinstance(policy, dict):
            found.append(_statements(function, where, stack.resolve(policy)))
        else:
            found.append(_managed(function, where, str(stack.resolve(policy)), unresolved))
    return [s for group in found for s in group]


def _attached(template: SamTemplate, stack: Stack, function: str, role_id: str) -> list[list[Statement]]:
    """`AWS::IAM::Policy` resources whose Roles name the role (`{"Ref": role_id}`)."""
    return [
        _statements(function, f"{role_id}/{policy_id}", stack.resolve(resource["Properties"]["PolicyDocument"]))
        for policy_id, resource in template.resources.items()
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"].get("Roles", [])
    ]


@dataclass
class Ledger:
    """Statements seen, the (statement, action) pairs that allowed a call, and the calls denied."""

    statements: dict[tuple[str, str], Statement] = field(default_factory=dict)  # by (name, action)
    used: set[tuple[str, str]] = field(default_factory=set)
    unresolved: set[str] = field(default_factory=set)
    checked: int = 0
    denied: int = 0
    _roles: dict[int, dict[str, list[Statement]]] = field(default_factory=dict, repr=False)

    def roles(self, template: SamTemplate, stack: Stack) -> dict[str, list[Statement]]:
        """Each function's statements in `stack` (kept: a stack's physical names do not change)."""
        if id(stack) not in self._roles:
            roles = {f: role_statements(template, stack, f, self.unresolved) for f in template.functions()}
            for statements in roles.values():
                for statement in statements:
                    for action in statement.actions:
                        self.statements.setdefault((statement.name, action), statement)
            self._roles[id(stack)] = roles
        return self._roles[id(stack)]

    def check(self, template: SamTemplate, stacks: Iterable[Stack], calls: Iterable[Call]) -> list[Call]:
        """The calls that no role statement allows in any of `stacks` (where the calls were made)."""
        by_stack = [self.roles(template, stack) for stack in stacks]
        denied = []
        for call in calls:
            self.checked += 1
            allowing = [self._allowing(roles.get(call.function, []), call) for roles in by_stack]
            granted = next((a for a in allowing if a is not None), None)
            if granted is None:
                denied.append(call)
            else:
                self.used.add(granted)
        self.denied += len(denied)
        return denied

    @staticmethod
    def _allowing(statements: list[Statement], call: Call) -> tuple[str, str] | None:
        matching = [
            (s, action) for s in statements if s.covers(call.resource) and (action := s.action_matching(call.action))
        ]
        if any(s.effect == "Deny" for s, _ in matching):
            return None
        return next(((s.name, a) for s, a in matching if s.effect == "Allow"), None)

    def unused(self) -> list[str]:
        """Statements that allowed no recorded call, but the runtime's (it writes the logs, not the code)."""
        return sorted(
            f"{name}: {action}"
            for name, action in self.statements
            if (name, action) not in self.used and f"/{RUNTIME_POLICY}/" not in name
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "statements": sorted(self.statements),
            "used": sorted(self.used),
            "unresolved": sorted(self.unresolved),
            "checked": self.checked,
            "denied": self.denied,
        }

    def merge(self, other: dict[str, Any]) -> None:
        """Another process's ledger (pytest-xdist workers send theirs to the controller)."""
        for name, action in other["statements"]:
            self.statements.setdefault((name, action), Statement("", name, "", (action,), ()))
        self.used |= {(name, action) for name, action in other["used"]}
        self.unresolved |= set(other["unresolved"])
        self.checked += other["checked"]
        self.denied += other["denied"]

    def report(self) -> list[str]:
        lines = [f"{self.checked} AWS calls of the functions checked against their roles: {self.denied} denied"]
        if self.unused():
            lines.append("role statements no e2e test used (failure paths, or permissions to drop):")
            lines += [f"  {line}" for line in self.unused()]
        lines.append(f"  (not listed: {RUNTIME_POLICY}, which the Lambda runtime uses to write each function's logs)")
        lines += [f"not checked: {line}" for line in sorted(self.unresolved)]
        return lines
