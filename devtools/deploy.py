"""`make deploy`: `sam package` of the build, a check of what it wrote, then `sam deploy` of that file.

Packaging is a step of its own so that its output can be checked before CloudFormation sees it: SAM
CLI rewrites an artifact inside `Fn::ForEach` to S3 only when the loop's collection is a literal list
(aws-sam-cli #9117), and CloudFormation's SAM transform refuses a local `CodeUri`. `make deploy-check`
runs this same module, with the same flags, against an emulator; `make test` runs `package` and
`problems` against moto's S3.

    python -m devtools.deploy [--config-env ENV] [--guided] [-- SAM_DEPLOY_ARGS...]
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from devtools.sam_template import REPO_ROOT, expand_language_extensions, read_template, write_expanded
from ntp import samconfig
from ntp.operations import VERSION_TAG

SAM = REPO_ROOT / ".venv" / "bin" / "sam"
BUILT = REPO_ROOT / ".aws-sam" / "build" / "template.yaml"
#: What `sam deploy` sends to CloudFormation.
PACKAGED = REPO_ROOT / ".aws-sam" / "packaged.yaml"
#: For an emulator without AWS::LanguageExtensions: the packaged template with its loops expanded.
PACKAGED_EXPANDED = PACKAGED.with_name("packaged.expanded.json")


def sam_environment() -> dict[str, str]:
    """`sam` reads the loops only with this (samconfig.toml sets it per command too)."""
    return {**os.environ, "SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS": "1", "SAM_CLI_TELEMETRY": "0"}


#: `sam deploy` options that say where artifacts go and as whom: `sam package` must get them too, or
#: the code would be uploaded for samconfig's region or account and the stack would fail to load it.
SHARED_OPTIONS = ("--region", "--profile", "--s3-bucket", "--s3-prefix", "--kms-key-id")


def shared_options(deploy_args: list[str]) -> dict[str, str]:
    """The SHARED_OPTIONS (and --parameter-overrides) given to `make deploy ARGS=...`, by name."""
    found: dict[str, str] = {}
    for i, arg in enumerate(deploy_args):
        name, equals, value = arg.partition("=")
        if name in (*SHARED_OPTIONS, "--parameter-overrides"):
            found[name] = value if equals else (deploy_args[i + 1] if i + 1 < len(deploy_args) else "")
    return found


def package_command(
    env: str = "default",
    bucket: str | None = None,
    output: Path = PACKAGED,
    options: dict[str, str] | None = None,
    built: Path = BUILT,
) -> list[str]:
    """`sam package` with samconfig.toml's deploy settings (sam package reads only its own section),
    and the deploy's own SHARED_OPTIONS over them. `bucket` names the artifact bucket (moto cannot
    host SAM's managed one)."""
    options = {k: v for k, v in (options or {}).items() if k in SHARED_OPTIONS}
    bucket = bucket or options.pop("--s3-bucket", None) or samconfig.value("s3_bucket", env)
    where = ["--s3-bucket", bucket] if bucket else ["--resolve-s3"]  # as a guided deploy would choose
    prefix = options.pop("--s3-prefix", None) or samconfig.value("s3_prefix", env)
    extra = [*where, *(["--s3-prefix", str(prefix)] if prefix else []), *[p for o in options.items() for p in o]]
    return _sam("package", built, env, "--output-template-file", str(output), *extra)


def deploy_command(template: Path, env: str = "default", *extra: str) -> list[str]:
    return _sam("deploy", template, env, *extra)


def _sam(command: str, template: Path, env: str, *extra: str) -> list[str]:
    config = ["--config-file", str(REPO_ROOT / samconfig.PATH), "--config-env", env]
    return [str(SAM), command, *config, "--template-file", str(template), *extra]


def with_version_tag(deploy_args: list[str], env: str = "default") -> list[str]:
    """`deploy_args` with `--tags`: the ones given (else samconfig.toml's) plus VERSION_TAG=this release
    (`ntp status` shows it; CloudFormation passes stack tags on to the resources that take tags)."""
    from ntp_webhooks import __version__

    given = samconfig.value("tags", env) or ""
    rest: list[str] = []
    args = iter(deploy_args)
    for arg in args:
        name, equals, value = arg.partition("=")
        if name == "--tags":
            given = value if equals else next(args, "")
        else:
            rest.append(arg)
    return [*rest, "--tags", f"{given} {VERSION_TAG}={__version__}".strip()]


def _artifacts(resources: dict[str, Any], where: str = "Resources") -> list[tuple[str, str, Any]]:
    """(place, property, value) of every artifact property, inside `Fn::ForEach` bodies too."""
    from samcli.lib.cfn_language_extensions.models import PACKAGEABLE_RESOURCE_ARTIFACT_PROPERTIES

    found: list[tuple[str, str, Any]] = []
    for key, value in resources.items():
        if key.startswith("Fn::ForEach::") and isinstance(value, list) and len(value) == 3:
            found += _artifacts(value[2], f"{where}.{key}")
        elif isinstance(value, dict):
            properties = value.get("Properties", {})
            for name in PACKAGEABLE_RESOURCE_ARTIFACT_PROPERTIES.get(value.get("Type", ""), []):
                if "." not in name and name in properties:
                    found.append((f"{where}.{key}", name, properties[name]))
    return found


def _in_s3(value: Any) -> bool:
    """`s3://bucket/key`, or the `{Bucket, Key}` / `{S3Bucket, S3Key}` object form."""
    if isinstance(value, str):
        return value.startswith("s3://") and "/" in value.removeprefix("s3://")
    return isinstance(value, dict) and bool({"Bucket", "S3Bucket"} & set(value))


def problems(packaged: dict[str, Any], parameters: dict[str, str] | None = None) -> list[str]:
    """Why CloudFormation would refuse the packaged template: an artifact left local, or an error of
    the SAM transform run after the language extensions (as CloudFormation runs them, with the
    template's defaults and `parameters`). Empty when it would be accepted."""
    found = [
        f"{place}: {name} is {value!r}, not an S3 location (sam package did not upload it)"
        for place, name, value in _artifacts(packaged.get("Resources", {}))
        if not _in_s3(value)
    ]
    return found + _transform_errors(packaged, parameters or {})


def _transform_errors(packaged: dict[str, Any], parameters: dict[str, str]) -> list[str]:
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.translator import Translator

    # The loops expanded and nothing else: CloudFormation's transform resolves only its own functions
    # (SAM CLI's full pipeline would also turn a Ref to a Number parameter into a string).
    expanded = expand_language_extensions(copy.deepcopy(packaged))
    values = {name: str(spec["Default"]) for name, spec in packaged.get("Parameters", {}).items() if "Default" in spec}
    values.update(parameters)
    # No AWS call is made: the managed-policy map is needed only for policies named without an ARN.
    translator = Translator(None, Parser(), plugins=[], boto_session=boto3.session.Session(region_name="us-east-1"))
    try:
        translator.translate(sam_template=expanded, parameter_values=values, get_managed_policy_map=dict)
    except InvalidDocumentException as exc:
        return [f"SAM transform: {cause}" for cause in exc.causes]
    return []


def parameter_overrides(env: str = "default", given: str = "") -> dict[str, str]:
    """samconfig.toml's `parameter_overrides` (`A="x" B="y"`), then those `given` to the deploy, as a dict."""
    import shlex

    text = f"{samconfig.value('parameter_overrides', env) or ''} {given}"
    return dict(pair.split("=", 1) for pair in shlex.split(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-env", default="default", help="samconfig.toml environment")
    parser.add_argument("--guided", action="store_true", help="sam deploy --guided (the first deploy)")
    parser.add_argument(
        "--expand-language-extensions",
        action="store_true",
        help="deploy the packaged template with its loops expanded, for an emulator without the transform",
    )
    parser.add_argument(
        "--build-dir", type=Path, default=BUILT.parent, help="the `sam build` output to package (default: make build's)"
    )
    parser.add_argument("deploy_args", nargs="*", help="more `sam deploy` arguments, after --")
    args = parser.parse_args(argv)
    env, options = sam_environment(), shared_options(args.deploy_args)
    package = package_command(args.config_env, options=options, built=args.build_dir / "template.yaml")
    if subprocess.run(package, env=env, check=False).returncode:
        return 1
    overrides = parameter_overrides(args.config_env, options.get("--parameter-overrides", ""))
    found = problems(read_template(PACKAGED), overrides)
    if found:
        print(f"{PACKAGED.name} would be refused by CloudFormation:", *found, sep="\n  ", file=sys.stderr)
        return 1
    template = write_expanded(PACKAGED_EXPANDED, PACKAGED) if args.expand_language_extensions else PACKAGED
    extra = (["--guided"] if args.guided else []) + with_version_tag(args.deploy_args, args.config_env)
    return subprocess.run(deploy_command(template, args.config_env, *extra), env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
