"""Read template.yaml as data: CloudFormation short tags as their long forms, and the status table's
own definition as boto3 `create_table` arguments (so tests build their moto table from the template
and cannot drift from it).
"""

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from sink_dev.paths import ROOT

DEFAULT_TABLE_NAME = "status-table"

# Short tag -> long form key. !Ref, !Condition and !GetAtt have their own shapes (below).
_FUNCTIONS = {
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
    "FindInMap": "Fn::FindInMap",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Sub": "Fn::Sub",
    "Transform": "Fn::Transform",
    "And": "Fn::And",
    "Equals": "Fn::Equals",
    "If": "Fn::If",
    "Not": "Fn::Not",
    "Or": "Fn::Or",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
}


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short tags.

    CloudFormation reads unquoted dates as strings, so the timestamp resolver is dropped too
    (`AWSTemplateFormatVersion: 2010-09-09` stays a string).
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _construct(loader: CfnLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _ref(loader: CfnLoader, node: yaml.Node) -> dict:
    return {"Ref": _construct(loader, node)}


def _condition(loader: CfnLoader, node: yaml.Node) -> dict:
    return {"Condition": _construct(loader, node)}


def _get_att(loader: CfnLoader, node: yaml.Node) -> dict:
    value = _construct(loader, node)
    if isinstance(value, str):
        resource, _, attribute = value.partition(".")
        if not attribute:
            raise yaml.constructor.ConstructorError(
                None, None, f"!GetAtt {value!r} is not of the form Resource.Attribute", node.start_mark
            )
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


def _function(long_name: str):
    def construct(loader: CfnLoader, node: yaml.Node) -> dict:
        return {long_name: _construct(loader, node)}

    return construct


CfnLoader.add_constructor("!Ref", _ref)
CfnLoader.add_constructor("!Condition", _condition)
CfnLoader.add_constructor("!GetAtt", _get_att)
for _short, _long in _FUNCTIONS.items():
    CfnLoader.add_constructor(f"!{_short}", _function(_long))


def loads(text: str) -> dict:
    return yaml.load(text, Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass


def load_template(path: str | Path = ROOT / "template.yaml") -> dict:
    """The template as a dict, intrinsics in their long form ({"Ref": ...}, {"Fn::GetAtt": [...]})."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = ROOT / path
    stat = path.stat()
    # Every local stack and test reads it: parse each version of the file once, hand out copies.
    return copy.deepcopy(_parsed(path.resolve(), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int, size: int) -> dict:
    return loads(path.read_text(encoding="utf-8"))


def _literal(value: Any, where: str) -> Any:
    """Table keys must be plain values for a test table to be built from them."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::")):
        raise ValueError(f"{where} is an intrinsic function ({value}); tests need literal key definitions")
    return value


def table_create_kwargs(
    template: dict, logical_id: str = "StatusTable", table_name: str | None = None
) -> dict:
    """boto3 `dynamodb.create_table` arguments from the template's own AWS::DynamoDB::Table resource."""
    resource = template["Resources"][logical_id]
    if resource.get("Type") != "AWS::DynamoDB::Table":
        raise ValueError(f"{logical_id} is a {resource.get('Type')}, not an AWS::DynamoDB::Table")
    props = resource["Properties"]
    name = table_name or props.get("TableName")
    if not isinstance(name, str):  # absent, or an intrinsic such as !Sub
        name = DEFAULT_TABLE_NAME

    billing_mode = _literal(props.get("BillingMode", "PROVISIONED"), f"{logical_id}.BillingMode")
    provisioned = billing_mode == "PROVISIONED"

    def throughput(owner: dict, where: str) -> dict:
        value = _literal(owner.get("ProvisionedThroughput"), f"{where}.ProvisionedThroughput")
        if not value:
            raise ValueError(f"{where} is PROVISIONED but has no ProvisionedThroughput")
        return {key: int(_literal(value[key], f"{where}.{key}")) for key in ("ReadCapacityUnits", "WriteCapacityUnits")}

    def key_schema(owner: dict, where: str) -> list[dict]:
        return [
            {"AttributeName": _literal(k["AttributeName"], where), "KeyType": _literal(k["KeyType"], where)}
            for k in _literal(owner["KeySchema"], f"{where}.KeySchema")
        ]

    def index(definition: dict, where: str, with_throughput: bool) -> dict:
        result = {
            "IndexName": _literal(definition["IndexName"], f"{where}.IndexName"),
            "KeySchema": key_schema(definition, where),
            "Projection": _literal(definition["Projection"], f"{where}.Projection"),
        }
        if with_throughput:
            result["ProvisionedThroughput"] = throughput(definition, where)
        return result

    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema(props, logical_id),
        "AttributeDefinitions": [
            {
                "AttributeName": _literal(a["AttributeName"], logical_id),
                "AttributeType": _literal(a["AttributeType"], logical_id),
            }
            for a in _literal(props["AttributeDefinitions"], f"{logical_id}.AttributeDefinitions")
        ],
        "BillingMode": billing_mode,
    }
    if provisioned:
        kwargs["ProvisionedThroughput"] = throughput(props, logical_id)
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [
            index(gsi, f"{logical_id}.GlobalSecondaryIndexes", provisioned) for gsi in props["GlobalSecondaryIndexes"]
        ]
    if props.get("LocalSecondaryIndexes"):
        kwargs["LocalSecondaryIndexes"] = [
            index(lsi, f"{logical_id}.LocalSecondaryIndexes", False) for lsi in props["LocalSecondaryIndexes"]
        ]
    return kwargs
