"""A dependency a partner adds for their handlers ends up in the PartnerLayer's build artifact: `sam build`
installs partner/handlers/requirements.txt next to business_logic.py, as documented."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

from devtools.sam_template import PARTNER_LAYER, REPO_ROOT, SamTemplate
from tests.conftest import STAND_IN_PARTNER

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  PartnerLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: handlers
      CompatibleRuntimes: [python3.13]
    Metadata: {BuildMethod: python3.13, BuildArchitecture: arm64}
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


def test_a_dependency_in_the_partners_requirements_is_in_the_built_layer(tmp_path: Path) -> None:
    # The template's own PartnerLayer definition, on the stand-in partner folder.
    (layer,) = (r for lid, r in SamTemplate().resources.items() if lid == PARTNER_LAYER)
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    shutil.copytree(STAND_IN_PARTNER, tmp_path / "handlers")
    wheel = pure_python_wheel(tmp_path, "partner_erp_client", "1.2.3", "VERSION = '1.2.3'\n")
    requirements = tmp_path / "handlers" / "requirements.txt"
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

    built = tmp_path / "build" / PARTNER_LAYER / "python"  # Lambda extracts it to /opt/python
    assert (built / "partner_erp_client" / "__init__.py").read_text() == "VERSION = '1.2.3'\n"
    assert (built / "business_logic.py").exists()
