"""Translate template.yaml with the SAM translator, then lint the resulting CloudFormation with cfn-lint.

`sam validate --lint` lints the SAM template itself; errors that only show once SAM has expanded its
resources (an event source mapping, a generated role or policy, an HTTP API stage) slip through it.
This runs offline: a stand-in managed-policy loader (no IAM call), region us-east-1, local code paths
replaced by S3 placeholders as `sam validate` does.

Run it with the SAM CLI's interpreter (it has samtranslator and cfn-lint):

    .venv-sam/bin/python tools/sink_dev/lint_template.py [template.yaml] [--show-translated]

Exit status: 0 clean (informational findings are printed), 1 errors or warnings, 2 translation failed.
"""

import argparse
import copy
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# samtranslator and cfn-lint read the region from the environment; never let them look for credentials.
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = REGION

# Runs with the SAM CLI's interpreter, where the project's tools are not installed.
sys.path.insert(0, str(ROOT / "tools"))

import boto3  # noqa: E402
from cfnlint.api import ManualArgs, lint  # noqa: E402
from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.parser.parser import Parser  # noqa: E402
from samtranslator.translator.translator import Translator  # noqa: E402

from sink_dev.template import load_template  # noqa: E402

PLACEHOLDER_S3 = "s3://bucket/value"


class OfflineManagedPolicies(dict):
    """Managed-policy name -> ARN without calling IAM: every name maps to its AWS-managed ARN."""

    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/{name}"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not name.startswith("arn:")


def replace_local_paths(template: dict) -> dict:
    """Local CodeUri/ContentUri/DefinitionUri become S3 placeholders (the translator wants S3)."""
    template = copy.deepcopy(template)
    function_globals = template.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = PLACEHOLDER_S3
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        keys = {
            "AWS::Serverless::Function": ["CodeUri"],
            "AWS::Serverless::LayerVersion": ["ContentUri"],
            "AWS::Serverless::Api": ["DefinitionUri"],
            "AWS::Serverless::HttpApi": ["DefinitionUri"],
            "AWS::Serverless::StateMachine": ["DefinitionUri"],
        }.get(resource.get("Type"), [])
        for key in keys:
            value = properties.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                properties[key] = PLACEHOLDER_S3
    return template


def translate(template: dict) -> dict:
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=REGION),
    )
    policies = OfflineManagedPolicies()
    return translator.translate(
        replace_local_paths(template),
        parameter_values={},
        get_managed_policy_map=lambda: policies,
    )


def lint_cloudformation(cloudformation: dict) -> list:
    return lint(
        json.dumps(cloudformation, indent=1),
        config=ManualArgs(regions=[REGION], include_checks=["I"]),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", nargs="?", default=str(ROOT / "template.yaml"))
    parser.add_argument("--show-translated", action="store_true", help="print the translated CloudFormation")
    args = parser.parse_args(argv)

    template = load_template(args.template)
    try:
        cloudformation = translate(template)
    except InvalidDocumentException as error:
        print(f"SAM translation failed: {error.message}", file=sys.stderr)
        for cause in error.causes:
            print(f"  - {cause.message}", file=sys.stderr)
        return 2
    if args.show_translated:
        print(json.dumps(cloudformation, indent=2))

    matches = lint_cloudformation(cloudformation)
    failures = [m for m in matches if m.rule.id[0] in "EW"]
    for match in matches:
        path = "/".join(str(p) for p in getattr(match, "path", []) or [])
        print(f"{match.rule.id} {match.message} [{path}]", file=sys.stderr if match in failures else sys.stdout)
    resources = len(cloudformation.get("Resources", {}))
    if failures:
        print(f"{len(failures)} error(s)/warning(s) in the translated template ({resources} resources)",
              file=sys.stderr)
        return 1
    print(f"translated template is clean: {resources} CloudFormation resources, "
          f"{len(matches)} informational finding(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
