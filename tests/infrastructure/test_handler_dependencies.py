"""A dependency a partner adds for business_logic.py ends up in the consumer function's build artifact:
`sam build` installs functions/consumers/requirements.txt next to the handler, as documented."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

from devtools.sam_template import REPO_ROOT

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  OrderConsumerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: consumers
      Handler: consumer_handler.lambda_handler
      Runtime: python3.13
      Architectures: [arm64]
"""


def pure_python_wheel(directory: Path, name: str, version: str, source: str) -> Path:
    """A minimal wheel, made by hand so that the test needs no index and no build backend."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": source,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def test_a_dependency_in_the_consumers_requirements_is_in_the_built_function(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "functions" / "consumers", tmp_path / "consumers")
    wheel = pure_python_wheel(tmp_path, "partner_erp_client", "1.2.3", "VERSION = '1.2.3'\n")
    requirements = tmp_path / "consumers" / "requirements.txt"
    requirements.write_text(requirements.read_text() + f"partner_erp_client @ {wheel.as_uri()}\n")
    (tmp_path / "template.yaml").write_text(TEMPLATE)

    sam = REPO_ROOT / ".venv" / "bin" / "sam"
    subprocess.run(
        [str(sam), "build", "--template", "template.yaml", "--build-dir", "build"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={"PATH": f"{sam.parent}:/usr/bin:/bin", "SAM_CLI_TELEMETRY": "0", "HOME": str(tmp_path)},
    )

    built = tmp_path / "build" / "OrderConsumerFunction"
    assert (built / "partner_erp_client" / "__init__.py").read_text() == "VERSION = '1.2.3'\n"
    assert (built / "business_logic.py").exists() and (built / "consumer_handler.py").exists()
