"""The provisioner knows exactly what template.yaml uses, and refuses the rest loudly."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from devtools.provision import Provisioner, Stack, UnsupportedResource
from devtools.sam_template import SamTemplate, TemplateError


def test_an_intrinsic_the_template_does_not_use_is_an_error_not_a_guess() -> None:
    stack = Stack(parameters={"A": "x"}, pseudo={"AWS::Region": "us-east-1"})
    assert stack.resolve({"Fn::Sub": "${A}-${AWS::Region}"}) == "x-us-east-1"
    with pytest.raises(TemplateError, match="Fn::Join"):
        stack.resolve({"Fn::Join": ["-", ["a", "b"]]})


TABLE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: {billing}
      AttributeDefinitions: [{{AttributeName: pk, AttributeType: S}}]
      KeySchema: [{{AttributeName: pk, KeyType: HASH}}]
{extra}"""


@pytest.mark.parametrize(
    ("billing", "extra", "message"),
    [
        ("PAY_PER_REQUEST", "      StreamSpecification: {StreamViewType: NEW_IMAGE}\n", "StreamSpecification"),
        ("PROVISIONED", "", "on-demand"),
    ],
)
def test_a_table_with_properties_it_would_ignore_is_refused(
    tmp_path: Path, billing: str, extra: str, message: str
) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TABLE.format(billing=billing, extra=extra))
    with mock_aws(), pytest.raises(UnsupportedResource, match=message):
        Provisioner(SamTemplate(path), boto3.client).provision()
