"""template.yaml: it validates, lints (also once SAM has expanded it), builds, and says what the code expects.

The external tools live in the SAM CLI's own virtual environment (`make setup`); a missing tool is a
failure, not a skip, so a broken setup never passes silently.
"""

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sink_dev.paths import ROOT
from sink_dev.template import load_template, table_create_kwargs

SAM = ROOT / ".venv-sam" / "bin" / "sam"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
PROJECT_BIN = ROOT / ".venv" / "bin"
FUNCTIONS = {
    "StreamConsumerFunction": {
        "dir": "stream_consumer", "service": "stream-consumer", "log_group": "StreamConsumerLogGroup",
    },
    "WebhookFunction": {"dir": "webhook", "service": "webhook", "log_group": "WebhookLogGroup"},
}
STREAM_ARN = {"Fn::If": ["CreateStream", {"Fn::GetAtt": ["EventStream", "Arn"]}, {"Ref": "ExistingStreamArn"}]}
# What store.py calls (TransactWriteItems is authorised as the UpdateItem actions it carries).
TABLE_ACTIONS = {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}


# ---------------------------------------------------------------------------------------- helpers

def tool(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make setup` (it creates .venv-sam with the SAM CLI)")
    return str(path)


def run(command: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """Run an external command from the repo root; fail with its whole output unless it exits 0."""
    env = os.environ | {
        # sam build needs python3.13 on PATH: the project venv provides it.
        "PATH": f"{PROJECT_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{' '.join(command)} did not finish in {timeout}s:\n{error.stdout}\n{error.stderr}")
    output = f"$ {' '.join(command)}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    print(output)
    assert result.returncode == 0, f"exit status {result.returncode}\n{output}"
    return result


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(ROOT / "template.yaml")


def resources_of(template: dict, resource_type: str) -> dict:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def function_props(template: dict, logical_id: str) -> dict:
    """A function's effective properties: its own over Globals.Function (maps merged, as SAM does)."""
    globals_ = template.get("Globals", {}).get("Function", {})
    own = template["Resources"][logical_id]["Properties"]
    merged = globals_ | own
    merged["Environment"] = {
        "Variables": globals_.get("Environment", {}).get("Variables", {})
        | own.get("Environment", {}).get("Variables", {})
    }
    return merged


def env_of(template: dict, logical_id: str) -> dict:
    return function_props(template, logical_id)["Environment"]["Variables"]


def parameter_value(template: dict, value):
    """A literal, or the default of the parameter it refers to."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in template.get("Parameters", {}):
        parameter = template["Parameters"][value["Ref"]]
        assert "Default" in parameter, f"parameter {value['Ref']} has no default"
        return parameter["Default"]
    return value


def refers_to(node, logical_id: str) -> bool:
    return node == {"Ref": logical_id} or (
        isinstance(node, dict) and "Fn::GetAtt" in node and node["Fn::GetAtt"][0] == logical_id
    )


# ---------------------------------------------------------------------------------------- external tools

@pytest.mark.slow
def test_sam_validate_lint_passes():
    result = run([tool(SAM), "validate", "--lint", "--template", "template.yaml", "--region", "us-east-1"])
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.mark.slow
def test_translated_template_lints_clean():
    """SAM's expansion (event source mapping, roles, stage) is linted too, offline."""
    result = run([tool(SAM_PYTHON), "tools/sink_dev/lint_template.py", "template.yaml"])
    assert "translated template is clean" in result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    run([tool(SAM), "build", "--template", "template.yaml", "--build-dir", str(build_dir)], timeout=1200)
    return build_dir


@pytest.mark.slow
def test_sam_build_layer_holds_core_and_dependencies_for_arm64(built):
    python = built / "CoreLayer" / "python"
    for expected in ("twilio_sink/__init__.py", "aws_lambda_powertools", "pydantic", "twilio/request_validator.py"):
        assert (python / expected).exists(), f"built layer lacks python/{expected}"
    # The runtime brings boto3 with its own botocore: the layer must not shadow either.
    assert not [path.name for path in python.iterdir() if path.name.startswith(("boto3", "botocore"))]
    # Built for the functions' architecture: pydantic-core's compiled extension is aarch64.
    extensions = list((python / "pydantic_core").glob("_pydantic_core*.so"))
    assert extensions and all("aarch64" in e.name for e in extensions), extensions


@pytest.mark.slow
def test_sam_build_layer_ships_bytecode_lambda_accepts(built):
    """Lambda's /opt is read-only: without .pyc files every cold start compiles the layer from source.
    Each must be unchecked-hash (PEP 552 flags 0b01), valid whatever the zip does to file timestamps."""
    python = built / "CoreLayer" / "python"
    sources = [path for path in python.rglob("*.py") if "__pycache__" not in path.parts]
    assert len(sources) > 100
    tag = sys.implementation.cache_tag
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        assert compiled.is_file(), f"no bytecode for {source.relative_to(python)}"
        header = compiled.read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, compiled
        assert int.from_bytes(header[4:8], "little") == 0b01, f"{compiled.relative_to(python)} is not unchecked-hash"


@pytest.mark.slow
def test_sam_build_functions_hold_their_entry_point(built):
    built_template = load_template(built / "template.yaml")
    for logical_id in FUNCTIONS:
        assert (built / logical_id / "app.py").is_file(), f"built {logical_id} lacks app.py"
        assert built_template["Resources"][logical_id]["Properties"]["CodeUri"] == logical_id
        # Thin entry points: the dependencies live in the layer only.
        assert not (built / logical_id / "pydantic").exists()


# ---------------------------------------------------------------------------------------- functions and layer

def test_core_layer(template):
    layer = template["Resources"]["CoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/core/"
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert (ROOT / "layers" / "core" / "requirements.txt").is_file()


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_runtime_architecture_tracing_and_layer(template, logical_id):
    props = function_props(template, logical_id)
    assert template["Resources"][logical_id]["Type"] == "AWS::Serverless::Function"
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Tracing"] == "Active"
    assert {"Ref": "CoreLayer"} in props["Layers"]
    assert props["Handler"] == "app.lambda_handler"
    assert props["CodeUri"] == f"functions/{FUNCTIONS[logical_id]['dir']}/"
    assert 128 <= int(parameter_value(template, props["MemorySize"])) <= 10240


def test_stream_consumer_gets_a_full_vcpu_by_default(template):
    # At ~0.6 ms of CPU per event (make bench) a saturated shard needs a whole vCPU: 1769 MB.
    props = function_props(template, "StreamConsumerFunction")
    assert int(parameter_value(template, props["MemorySize"])) >= 1769


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_local_endpoint_reaches_the_functions_only_when_given(template, logical_id):
    """An empty AWS_ENDPOINT_URL would send every AWS call nowhere: in AWS the variable must not exist."""
    from sink_local.stack import Template

    value = function_props(template, logical_id)["Environment"]["Variables"]["AWS_ENDPOINT_URL"]
    assert Template().evaluate(value) is None  # the default: AWS::NoValue, the key is dropped
    given = Template(overrides={"LocalEndpointUrl": "http://172.17.0.1:5000"})
    assert given.evaluate(value) == "http://172.17.0.1:5000"


def test_function_timeouts(template):
    assert function_props(template, "StreamConsumerFunction")["Timeout"] == 60
    # Twilio waits 5 s for the webhook's answer.
    assert function_props(template, "WebhookFunction")["Timeout"] == 8


def test_kinesis_event_source(template):
    events = function_props(template, "StreamConsumerFunction")["Events"]
    (kinesis,) = [e["Properties"] for e in events.values() if e["Type"] == "Kinesis"]
    value = lambda name: parameter_value(template, kinesis[name])  # noqa: E731
    assert kinesis["Stream"] == STREAM_ARN
    assert value("StartingPosition") == "LATEST"
    assert value("BatchSize") == 1000
    assert value("MaximumBatchingWindowInSeconds") == 1
    assert value("ParallelizationFactor") == 1
    assert kinesis["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert kinesis["BisectBatchOnFunctionError"] is True
    # Finite (-1 would retry forever and block the shard).
    assert value("MaximumRetryAttempts") == 10
    assert value("MaximumRecordAgeInSeconds") == 86400
    assert kinesis["DestinationConfig"] == {
        "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}}
    }
    # A parameter behind any of them must still be bounded to finite values.
    for name in ("MaximumRetryAttempts", "MaximumRecordAgeInSeconds"):
        if isinstance(kinesis[name], dict):
            assert template["Parameters"][kinesis[name]["Ref"]]["MinValue"] >= 0


def test_the_rest_api_sends_every_method_and_path_to_the_function(template):
    paths = template["Resources"]["WebhookRestApi"]["Properties"]["Body"]["paths"]
    assert set(paths) == {"/events", "/", "/{proxy+}"}
    for path in paths.values():
        assert list(path) == ["x-amazon-apigateway-any-method"]
        integration = path["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy" and "${WebhookFunction.Arn}" in integration["uri"]["Fn::Sub"]


def test_webhook_http_api_event(template):
    from twilio_sink import webhook  # the route the code resolves must be the route the API sends

    events = function_props(template, "WebhookFunction")["Events"]
    (http, unrouted) = [e["Properties"] for e in events.values() if e["Type"] == "HttpApi"]
    assert http["ApiId"] == unrouted["ApiId"] == {"Ref": "WebhookApi"}
    assert http["Method"].upper() == "POST"
    assert http["Path"] == "/events" == webhook.ROUTE
    # Every other method and path: the $default route (no Method, no Path), so that the function's
    # 404 and 405 answers and its RequestsUnroutable metric are what a deployed stack gives
    assert "Method" not in unrouted and "Path" not in unrouted
    assert http.get("PayloadFormatVersion", "2.0") == unrouted.get("PayloadFormatVersion", "2.0") == "2.0"
    api = template["Resources"]["WebhookApi"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    assert api["Properties"].get("StageName", "$default") == "$default"
    settings = api["Properties"]["DefaultRouteSettings"]
    assert parameter_value(template, settings["ThrottlingRateLimit"]) > 0
    assert parameter_value(template, settings["ThrottlingBurstLimit"]) > 0


# ---------------------------------------------------------------------------------------- environment

EXPECTED_ENV = {
    "STATUS_TABLE_NAME": {"Ref": "StatusTable"},
    "TOPIC_ARN": {"Ref": "NotificationTopic"},
    "DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetterQueue"},
}
WEBHOOK_ENV = {
    "AUTH_TOKEN_SECRET_ARN": {"Ref": "AuthTokenSecret"},
    "PUBLIC_BASE_URL": {"Ref": "PublicBaseUrl"},
}
LITERAL_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "AWS_XRAY_CONTEXT_MISSING",
               "PYDANTIC_DISABLE_PLUGINS"}


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_environment_names_reach_the_code_through_ref_or_getatt(template, logical_id):
    env = env_of(template, logical_id)
    expected = EXPECTED_ENV | (WEBHOOK_ENV if logical_id == "WebhookFunction" else {})
    for name, value in expected.items():
        assert env.get(name) == value, f"{logical_id} {name} = {env.get(name)!r}, expected {value!r}"
    if logical_id != "WebhookFunction":
        assert "AUTH_TOKEN_SECRET_ARN" not in env, "only the webhook reads the auth token"
    for name, value in env.items():
        if name == "AWS_ENDPOINT_URL":  # local runs only: test_local_endpoint_reaches_the_functions_only_when_given
            continue
        if name in LITERAL_ENV:
            assert isinstance(value, str) or set(value) == {"Ref"}, (name, value)
            continue
        # Never a hard-coded name or ARN; plain Ref/GetAtt only (tests resolve them against moto).
        assert isinstance(value, dict) and set(value) <= {"Ref", "Fn::GetAtt"}, f"{logical_id} {name} = {value!r}"
        (target,) = [value.get("Ref") or value["Fn::GetAtt"][0]]
        assert target in template["Resources"] or target in template["Parameters"], (name, target)


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_every_setting_the_code_reads_is_set(template, logical_id):
    from twilio_sink.config import Settings

    env = env_of(template, logical_id)
    for field in Settings.model_fields.values():
        # The webhook reads every optional setting but the reconciler's (tests/reconcile/test_template.py)
        # and the stream consumer's own.
        others = {"TWILIO_API_KEYS_SECRET_ARN", "TWILIO_API_BASE_URL", "STREAM_EVENTS_WITHOUT_ACCOUNT"}
        if field.is_required() or (logical_id == "WebhookFunction" and field.alias not in others):
            assert field.alias in env, f"{logical_id} does not set {field.alias}"
    if logical_id == "StreamConsumerFunction":
        assert env["STREAM_EVENTS_WITHOUT_ACCOUNT"] == {"Ref": "StreamEventsWithoutAccount"}


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_powertools_and_xray_settings(template, logical_id):
    env = env_of(template, logical_id)
    assert env["POWERTOOLS_SERVICE_NAME"] == FUNCTIONS[logical_id]["service"]
    assert parameter_value(template, env["POWERTOOLS_METRICS_NAMESPACE"]) == "TwilioEventSink"
    assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert template["Parameters"]["LogLevel"]["Default"] == "INFO"
    assert env["AWS_XRAY_CONTEXT_MISSING"] == "IGNORE_ERROR"


def test_public_base_url_defaults_to_empty(template):
    assert template["Parameters"]["PublicBaseUrl"]["Default"] == ""


# ---------------------------------------------------------------------------------------- log groups

@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_function_logs_to_its_own_group_with_retention(template, logical_id):
    group_id = FUNCTIONS[logical_id]["log_group"]
    group = template["Resources"][group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    retention = group["Properties"]["RetentionInDays"]
    assert retention == {"Ref": "LogRetentionDays"}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    name = group["Properties"]["LogGroupName"]
    logging = function_props(template, logical_id).get("LoggingConfig", {})
    if "LogGroup" in logging:
        assert logging["LogGroup"] == {"Ref": group_id}
    else:
        # Lambda's default group name, so the function writes here and never creates its own.
        assert name == {"Fn::Sub": f"/aws/lambda/${{{logical_id}}}"}


def test_no_log_group_without_retention(template):
    for name, group in resources_of(template, "AWS::Logs::LogGroup").items():
        assert "RetentionInDays" in group["Properties"], name


# ---------------------------------------------------------------------------------------- stream and Twilio role

def test_stream_is_created_unless_an_existing_one_is_given(template):
    assert template["Parameters"]["ExistingStreamArn"]["Default"] == ""
    assert template["Conditions"]["CreateStream"] == {"Fn::Equals": [{"Ref": "ExistingStreamArn"}, ""]}
    stream = template["Resources"]["EventStream"]
    assert stream["Type"] == "AWS::Kinesis::Stream"
    assert stream["Condition"] == "CreateStream"
    props = stream["Properties"]
    assert props["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}
    assert parameter_value(template, props["RetentionPeriodHours"]) == 168
    assert "StreamModeDetails" in props or "ShardCount" in props


def test_stream_arn_is_always_the_conditional_one(template):
    """Outside EventStream itself, the stream is only ever referred to as If[CreateStream, ...]."""
    resources = {k: v for k, v in template["Resources"].items() if k != "EventStream"}
    uses = 0
    for section in (resources, template.get("Outputs", {})):
        stack = [section]
        while stack:
            node = stack.pop()
            if node == STREAM_ARN:
                uses += 1
                continue
            assert not refers_to(node, "EventStream"), f"bare reference to EventStream: {node}"
            if isinstance(node, dict):
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    assert uses >= 3  # the event source, the Twilio role, the StreamArn output


def test_twilio_stream_writer_role(template):
    role = template["Resources"]["TwilioStreamWriterRole"]
    assert role["Type"] == "AWS::IAM::Role"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow"
    assert trust["Principal"] == {"AWS": "arn:aws:iam::177261743968:root"}
    assert trust["Action"] in ("sts:AssumeRole", ["sts:AssumeRole"])
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "TwilioExternalId"}}}
    external_id = template["Parameters"]["TwilioExternalId"]
    assert "Default" not in external_id, "the external id must be chosen by the operator"
    assert external_id["NoEcho"] is True
    assert external_id["MinLength"] >= 32 and external_id.get("AllowedPattern")
    statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    granted = {(action, str(s["Resource"])) for s in statements for action in as_list(s["Action"])}
    # Twilio's set-up script grants ListShards on "*"; the stream is all it needs to list.
    assert granted == {
        ("kinesis:PutRecord", str(STREAM_ARN)),
        ("kinesis:PutRecords", str(STREAM_ARN)),
        ("kinesis:ListShards", str(STREAM_ARN)),
        ("kinesis:DescribeLimits", "*"),  # an account-level call: no resource to scope to
    }
    assert all(s["Effect"] == "Allow" for s in statements)


# ---------------------------------------------------------------------------------------- state, topic, queues, secret

def test_status_table(template):
    table = template["Resources"]["StatusTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert "DeletionProtectionEnabled" in props
    assert "TableName" not in props, "a fixed table name blocks replacement and second stacks"


def test_table_create_kwargs_come_from_the_template(template):
    kwargs = table_create_kwargs(template, table_name="t")
    assert kwargs == {
        "TableName": "t",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "operation_id", "AttributeType": "S"},
            {"AttributeName": "unsettled", "AttributeType": "S"},
            {"AttributeName": "check_after", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [{
            "IndexName": "ByOperation",
            "KeySchema": [{"AttributeName": "operation_id", "KeyType": "HASH"},
                          {"AttributeName": "pk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE",
                           "NonKeyAttributes": ["entity", "id", "status", "event_type", "event_time", "updated_at"]},
        }, {
            "IndexName": "Unsettled",
            "KeySchema": [{"AttributeName": "unsettled", "KeyType": "HASH"},
                          {"AttributeName": "check_after", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE",
                           "NonKeyAttributes": ["entity", "id", "status", "event_type", "event_time", "data", "version",
                                                "updated_at"]},
        }],
    }
    assert table_create_kwargs(template)["TableName"]  # a default name when the caller gives none


def test_notification_topic_is_encrypted(template):
    topic = template["Resources"]["NotificationTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"


@pytest.mark.parametrize("fifo", ["false", "true"])
def test_the_fifo_option_makes_the_notification_topic_a_fifo_topic_with_explicit_deduplication(fifo):
    from sink_local.stack import STACK_NAME, Template

    template = Template(overrides={"NotificationTopicFifo": fifo})
    assert template.body["Parameters"]["NotificationTopicFifo"]["Default"] == "false"  # standard: every subscriber kind
    props = {name: template.evaluate(value) for name, value in template.resources["NotificationTopic"]["Properties"].items()}
    if fifo == "false":
        assert {name for name, value in props.items() if value is not None} == {"DisplayName", "KmsMasterKeyId"}
        return
    # SNS's mark of a FIFO topic is its name, which the functions read from TOPIC_ARN (twilio_sink/notify.py).
    assert props["TopicName"] == f"{STACK_NAME}-notifications.fifo"
    assert props["FifoTopic"] is True
    # The functions send each entry's MessageDeduplicationId: the change's identity, not a hash of its bytes.
    assert props["ContentBasedDeduplication"] is False
    assert props["FifoThroughputScope"] == "MessageGroup"
    assert props["KmsMasterKeyId"] == "alias/aws/sns"


@pytest.mark.parametrize("logical_id", ["DeadLetterQueue", "StreamFailureQueue"])
def test_queues(template, logical_id):
    queue = template["Resources"][logical_id]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 1209600


def test_auth_token_secret(template):
    secret = template["Resources"]["AuthTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    props = secret["Properties"]
    assert "auth token" in props["Description"].lower()
    assert "GenerateSecretString" in props or "SecretString" in props


# ---------------------------------------------------------------------------------------- least privilege

def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def grants(statements: list[dict]) -> set[tuple[str, str]]:
    found = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        found |= {(action, str(resource)) for action in as_list(statement["Action"])
                  for resource in as_list(statement["Resource"])}
    return found


def test_the_table_policy_is_written_once_with_only_what_the_code_calls(template):
    policy = template["Resources"]["StatusTableWritePolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    table = str({"Fn::GetAtt": ["StatusTable", "Arn"]})
    assert grants(policy["Properties"]["PolicyDocument"]["Statement"]) == {(a, table) for a in TABLE_ACTIONS}
    # Plus one: the reconciler's Query on its own index (tests/reconcile/test_template.py).
    assert str(template).count("dynamodb:") == len(TABLE_ACTIONS) + 1, "table actions granted somewhere else too"


def test_webhook_policies_are_least_privilege(template):
    props = template["Resources"]["WebhookFunction"]["Properties"]
    assert "Role" not in props
    assert props["Policies"] == [
        {"Ref": "StatusTableWritePolicy"},
        {"SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["NotificationTopic", "TopicName"]}}},
        {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}},
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "AuthTokenSecret"}}},
    ]


def test_stream_consumer_role_reads_only_the_stacks_stream(template):
    props = template["Resources"]["StreamConsumerFunction"]["Properties"]
    # A generated role would get AWSLambdaKinesisExecutionRole from SAM: every stream of the account.
    assert props["Role"] == {"Fn::GetAtt": ["StreamConsumerRole", "Arn"]} and "Policies" not in props
    role = template["Resources"]["StreamConsumerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert role["ManagedPolicyArns"] == [{"Ref": "StatusTableWritePolicy"}]
    logs = template["Resources"]["StreamConsumerLogsPolicy"]["Properties"]
    assert logs["Roles"] == [{"Ref": "StreamConsumerRole"}]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    stream, topic = str(STREAM_ARN), str({"Ref": "NotificationTopic"})
    queue = lambda name: str({"Fn::GetAtt": [name, "Arn"]})  # noqa: E731
    assert grants(statements + logs["PolicyDocument"]["Statement"]) == {
        *{(f"kinesis:{a}", stream) for a in
          ("DescribeStream", "DescribeStreamSummary", "GetRecords", "GetShardIterator", "ListShards")},
        ("sns:Publish", topic),
        ("sqs:SendMessage", queue("DeadLetterQueue")),
        ("sqs:SendMessage", queue("StreamFailureQueue")),
        ("xray:PutTraceSegments", "*"), ("xray:PutTelemetryRecords", "*"),  # X-Ray has no resources
        ("logs:CreateLogStream", queue("StreamConsumerLogGroup")),
        ("logs:PutLogEvents", queue("StreamConsumerLogGroup")),
    }


# ---------------------------------------------------------------------------------------- alarms

def alarms(template: dict) -> list[dict]:
    found = []
    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        if "Metrics" in props:  # metric math: see test_signature_mismatch_alarm_is_a_share
            continue
        found.append(props | {
            "_name": name,
            "_namespace": parameter_value(template, props["Namespace"]),
            "_dimensions": {d["Name"]: d["Value"] for d in props.get("Dimensions", [])},
        })
    return found


def alarm_for(template: dict, namespace: str, metric: str, dimensions: dict) -> dict:
    matches = [
        a for a in alarms(template)
        if a["_namespace"] == namespace and a["MetricName"] == metric and a["_dimensions"] == dimensions
    ]
    assert len(matches) == 1, f"expected one alarm on {namespace} {metric} {dimensions}, found {len(matches)}"
    return matches[0]


@pytest.mark.parametrize("logical_id", FUNCTIONS)
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_function_alarms(template, logical_id, metric):
    alarm = alarm_for(template, "AWS/Lambda", metric, {"FunctionName": {"Ref": logical_id}})
    assert alarm["Statistic"] == "Sum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0


def test_iterator_age_alarm(template):
    alarm = alarm_for(template, "AWS/Lambda", "IteratorAge", {"FunctionName": {"Ref": "StreamConsumerFunction"}})
    assert alarm["Statistic"] == "Maximum"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert 0 < parameter_value(template, alarm["Threshold"]) <= 300_000


@pytest.mark.parametrize("queue", ["DeadLetterQueue", "StreamFailureQueue"])
def test_queue_alarms(template, queue):
    alarm = alarm_for(
        template, "AWS/SQS", "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}},
    )
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0


def test_signature_mismatch_alarm_is_a_share_of_signed_deliveries(template):
    """Unsigned noise does not move it; Twilio's own deliveries failing (wrong token or URL) do."""
    env = env_of(template, "WebhookFunction")
    props = template["Resources"]["WebhookSignatureMismatchAlarm"]["Properties"]
    stats = {q["Id"]: q["MetricStat"] for q in props["Metrics"] if "MetricStat" in q}
    assert {stat["Metric"]["MetricName"] for stat in stats.values()} == {"SignatureMismatch", "DeliveriesVerified"}
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
        assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
        assert stat["Stat"] == "Sum"
    (returned,) = [q for q in props["Metrics"] if q.get("ReturnData")]
    assert "mismatch" in returned["Expression"] and "verified" in returned["Expression"]
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and props["Threshold"] == 50
    assert props["TreatMissingData"] == "notBreaching"
    assert "35.90.102.128/25" in props["AlarmDescription"]  # the runbook: Twilio's range or a probe


@pytest.mark.parametrize(("metric", "service"), [
    ("AuthTokenUnavailable", "webhook"), ("UnexpectedErrors", "webhook"), ("DeadlineExceeded", "webhook"),
    ("ForeignAccountEvents", "webhook"), ("ForeignAccountEvents", "stream-consumer"),
])
def test_alarms_on_what_the_code_emits(template, metric, service):
    namespace = parameter_value(template, env_of(template, "WebhookFunction")["POWERTOOLS_METRICS_NAMESPACE"])
    alarm = alarm_for(template, namespace, metric, {"service": service})
    assert alarm["Statistic"] == "Sum" and alarm["TreatMissingData"] == "notBreaching"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
    assert "Runbook" in alarm["AlarmDescription"]


def test_alarm_actions_go_to_the_optional_alarm_topic(template):
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""
    expected = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"]["AlarmActions"] == expected, name


# ---------------------------------------------------------------------------------------- parameters, outputs, config

def test_parameters_are_described_and_grouped(template):
    parameters = template["Parameters"]
    for name, parameter in parameters.items():
        assert parameter.get("Description", "").strip(), f"parameter {name} has no description"
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(parameters), "every parameter in exactly one group"


def test_every_parameter_is_used(template):
    body = str({k: v for k, v in template.items() if k not in ("Parameters", "Metadata")})
    for name in template["Parameters"]:
        assert f"'{name}'" in body or f"${{{name}}}" in body, f"parameter {name} is never used"


def test_the_flood_option_lets_only_twilios_ranges_reach_the_webhook(template):
    resources, parameters = template["Resources"], template["Parameters"]
    assert parameters["WebhookTwilioSourceOnly"]["Default"] == "false"  # why: its Description and docs
    assert parameters["TwilioSourceRanges"]["Default"] == "35.90.102.128/25"  # Twilio's published range
    assert template["Conditions"]["TwilioSourceOnly"] == {"Fn::Equals": [{"Ref": "WebhookTwilioSourceOnly"}, "true"]}
    option = {name for name, r in resources.items() if r.get("Condition") == "TwilioSourceOnly"}
    assert option == {"WebhookRestApi", "WebhookRestApiDeployment", "WebhookRestApiStage", "WebhookRestApiPermission",
                      "TwilioSourceRangeSet", "WebhookFirewall", "WebhookFirewallAssociation"}
    # The open door closes when the filtered one opens.
    assert resources["WebhookApi"]["Properties"]["DisableExecuteApiEndpoint"] == {
        "Fn::If": ["TwilioSourceOnly", True, False]}
    acl = resources["WebhookFirewall"]["Properties"]
    # Blocked with 429, not 403: a Twilio address missing from the list is retried, not dropped.
    assert acl["DefaultAction"] == {"Block": {"CustomResponse": {"ResponseCode": 429}}}
    (rule,) = acl["Rules"]
    assert rule["Action"] == {"Allow": {}}
    assert rule["Statement"] == {"IPSetReferenceStatement": {"Arn": {"Fn::GetAtt": ["TwilioSourceRangeSet", "Arn"]}}}
    assert resources["TwilioSourceRangeSet"]["Properties"]["Addresses"] == {"Ref": "TwilioSourceRanges"}
    association = resources["WebhookFirewallAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": ["WebhookFirewall", "Arn"]}
    assert "${WebhookRestApiStage}" in association["ResourceArn"]["Fn::Sub"]
    stage = resources["WebhookRestApiStage"]["Properties"]
    (settings,) = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "WebhookThrottlingRateLimit"}


def test_outputs(template):
    outputs = template["Outputs"]
    assert set(outputs) >= {
        "WebhookUrl", "StreamArn", "TwilioRoleArn", "StatusTableName", "NotificationTopicArn",
        "DeadLetterQueueUrl", "StreamFailureQueueUrl", "AuthTokenSecretArn", "StreamConsumerFunctionName",
        "WebhookFunctionName", "HistoryRetentionDays",
    }
    assert outputs["WebhookUrl"]["Value"] == {"Fn::If": [
        "TwilioSourceOnly",
        {"Fn::Sub": "https://${WebhookRestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${WebhookRestApiStage}/events"},
        {"Fn::Sub": "https://${WebhookApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/events"},
    ]}
    assert outputs["StreamArn"]["Value"] == STREAM_ARN
    # The external id is the role's only secret: it is not shown to whoever can read the stack.
    assert "TwilioExternalId" not in str([output["Value"] for output in outputs.values()])
    for name, output in outputs.items():
        assert output.get("Description"), f"output {name} has no description"


def test_samconfig():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]
    assert config["global"]["parameters"]["stack_name"] == "twilio-event-sink"
    assert config["build"]["parameters"] == config["build"]["parameters"] | {"cached": True, "parallel": True}
    deploy = config["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True


def test_code_paths_exist(template):
    for spec in FUNCTIONS.values():
        assert (ROOT / "functions" / spec["dir"] / "app.py").is_file()
    assert (ROOT / "layers" / "core" / "twilio_sink" / "__init__.py").is_file()
