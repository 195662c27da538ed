"""Every API subcommand, run through the built binary, prints JSON that fits botocore's output shape.

The check walks the output against the CodeDeploy model installed with botocore (independent of the Swift
code generated from it): only members the shape has, of the right JSON type, enum values from the model,
timestamps as ISO 8601 with an offset (aws CLI v2's format), and no required member missing.
"""
import datetime
import json
import os
import subprocess
import tempfile

import botocore.session
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("DEPLOYCTL_BIN", os.path.join(ROOT, ".build", "debug", "deployctl"))
MODEL = botocore.session.get_session().get_service_model("codedeploy")

# Values real CodeDeploy returns that its model's enum does not list (GetDeploymentConfig of CodeDeployDefault.OneAtATime reports MOST_CONCURRENCY).
EXTRA_ENUM_VALUES = {"MinimumHealthyHostsType": {"MOST_CONCURRENCY"}}


def check(value, shape, path, problems):
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object for {shape.name}, got {type(value).__name__}")
            return
        for key, member_value in value.items():
            if key not in shape.members:
                problems.append(f"{path}.{key}: not a member of {shape.name} (members: {', '.join(shape.members)})")
                continue
            check(member_value, shape.members[key], f"{path}.{key}", problems)
        for required in shape.required_members:
            if required not in value:
                problems.append(f"{path}: required member {required} of {shape.name} is missing")
        order = [k for k in shape.members if k in value]
        if list(value.keys()) != order:
            problems.append(f"{path}: members of {shape.name} are not in model order: {list(value.keys())}")
    elif t == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list for {shape.name}")
            return
        for i, item in enumerate(value):
            check(item, shape.member, f"{path}[{i}]", problems)
    elif t == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map for {shape.name}")
            return
        for k, v in value.items():
            check(k, shape.key, f"{path}<key>", problems)
            check(v, shape.value, f"{path}[{k}]", problems)
    elif t == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {value!r}")
        elif shape.enum and value not in shape.enum and value not in EXTRA_ENUM_VALUES.get(shape.name, set()):
            problems.append(f"{path}: {value!r} is not a {shape.name} value ({', '.join(shape.enum)})")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected an integer, got {value!r}")
    elif t == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {value!r}")
    elif t == "timestamp":
        if not isinstance(value, str):
            problems.append(f"{path}: expected an ISO 8601 timestamp, got {value!r}")
        else:
            try:
                parsed = datetime.datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    problems.append(f"{path}: timestamp {value!r} has no offset")
            except ValueError:
                problems.append(f"{path}: {value!r} is not ISO 8601")
    elif t == "double":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected a number, got {value!r}")
    else:
        problems.append(f"{path}: unexpected shape type {t}")


class Session:
    def __init__(self, directory):
        self.state = os.path.join(directory, "state.db")
        self.outputs = {}

    def run(self, *args, expect=0):
        proc = subprocess.run([BINARY, *args, "--state", self.state], capture_output=True, text=True, timeout=60)
        assert proc.returncode == expect, f"deployctl {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
        return proc

    def op(self, command, *args):
        proc = self.run(command, *args)
        self.outputs.setdefault(command, []).append(proc.stdout)
        return json.loads(proc.stdout) if proc.stdout.strip() else {}


@pytest.fixture(scope="module")
def session():
    with tempfile.TemporaryDirectory() as directory:
        s = Session(directory)
        s.op("create-application", "--application-name", "shop", "--tags", "Key=team,Value=web")
        s.op("create-application", "--application-name", "tmp")
        s.op("update-application", "--application-name", "tmp", "--new-application-name", "tmp2")
        s.op("get-application", "--application-name", "shop")
        s.op("list-applications")
        s.op("batch-get-applications", "--application-names", "shop", "tmp2")
        s.op("create-deployment-config", "--deployment-config-name", "Two", "--minimum-healthy-hosts", "type=HOST_COUNT,value=2")
        s.op("create-deployment-config", "--deployment-config-name", "Gone", "--minimum-healthy-hosts", "type=FLEET_PERCENT,value=25")
        for name in ("CodeDeployDefault.OneAtATime", "CodeDeployDefault.HalfAtATime", "CodeDeployDefault.AllAtOnce", "Two"):
            s.op("get-deployment-config", "--deployment-config-name", name)
        s.op("list-deployment-configs")
        s.op("delete-deployment-config", "--deployment-config-name", "Gone")
        for name, env in (("web-1", "prod"), ("web-2", "prod"), ("old-1", "prod")):
            s.op("register-on-premises-instance", "--instance-name", name)
            s.op("add-tags-to-on-premises-instances", "--instance-names", name, "--tags", f"Key=env,Value={env}", "Key=role,Value=web")
        s.op("remove-tags-from-on-premises-instances", "--instance-names", "web-2", "--tags", "Key=role,Value=web")
        s.op("deregister-on-premises-instance", "--instance-name", "old-1")
        s.op("get-on-premises-instance", "--instance-name", "web-1")
        s.op("get-on-premises-instance", "--instance-name", "old-1")
        s.op("list-on-premises-instances", "--registration-status", "Registered")
        s.op("list-on-premises-instances", "--tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE")
        s.op("batch-get-on-premises-instances", "--instance-names", "web-1", "web-2", "old-1")
        s.op(
            "create-deployment-group", "--application-name", "shop", "--deployment-group-name", "prod",
            "--on-premises-instance-tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE",
            "--deployment-config-name", "Two", "--tags", "Key=tier,Value=1",
            "--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE",
        )
        s.op(
            "create-deployment-group", "--application-name", "shop", "--deployment-group-name", "set",
            "--on-premises-tag-set", "onPremisesTagSetList=[[{Key=env,Value=prod,Type=KEY_AND_VALUE}],[{Key=role,Type=KEY_ONLY}]]",
        )
        s.op("create-deployment-group", "--application-name", "shop", "--deployment-group-name", "empty",
             "--on-premises-instance-tag-filters", "Key=nothing,Type=KEY_ONLY")
        s.op("create-deployment-group", "--application-name", "shop", "--deployment-group-name", "doomed")
        s.op("update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "doomed",
             "--new-deployment-group-name", "doomed2")
        s.op("delete-deployment-group", "--application-name", "shop", "--deployment-group-name", "doomed2")
        s.op("list-deployment-groups", "--application-name", "shop")
        s.op("register-application-revision", "--application-name", "shop", "--description", "manual",
             "--s3-location", "bucket=releases,key=shop-0.9.zip,bundleType=zip")
        s.op("register-application-revision", "--application-name", "shop",
             "--github-location", "repository=acme/shop,commitId=0123abc")
        s.op("register-application-revision", "--application-name", "shop",
             "--revision", '{"revisionType": "AppSpecContent", "appSpecContent": {"content": "version: 0.0\\nos: linux\\n"}}')
        s.op("register-application-revision", "--application-name", "shop",
             "--revision", "revisionType=String,string={content=version: 0.0}")
        first = s.op("create-deployment", "--application-name", "shop", "--deployment-group-name", "prod",
                     "--s3-location", "bucket=releases,key=shop-1.0.zip,bundleType=zip,eTag=abc,version=v1",
                     "--description", "first", "--file-exists-behavior", "OVERWRITE",
                     "--ignore-application-stop-failures")["deploymentId"]
        s.op("create-deployment", "--application-name", "shop", "--deployment-group-name", "empty",
             "--s3-location", "bucket=releases,key=shop-1.0.zip,bundleType=tgz")
        s.op("create-deployment", "--application-name", "shop", "--deployment-group-name", "set",
             "--github-location", "repository=acme/shop,commitId=0123abc",
             "--target-instances", "tagFilters=[{Key=role,Value=web,Type=KEY_AND_VALUE}]")
        s.op("get-deployment-group", "--application-name", "shop", "--deployment-group-name", "prod")
        s.op("batch-get-deployment-groups", "--application-name", "shop", "--deployment-group-names", "prod", "set", "nope")
        s.op("get-deployment", "--deployment-id", first)
        s.op("list-deployments")
        s.op("list-deployments", "--application-name", "shop", "--deployment-group-name", "prod",
             "--include-only-statuses", "Created", "Failed", "--create-time-range", "start=2020-01-01T00:00:00Z")
        s.op("list-deployment-targets", "--deployment-id", first, "--target-filters", "TargetStatus=Pending")
        s.op("get-deployment-target", "--deployment-id", first, "--target-id", "web-1")
        s.op("batch-get-deployment-targets", "--deployment-id", first, "--target-ids", "web-1", "web-2")
        s.op("list-deployment-instances", "--deployment-id", first, "--instance-status-filter", "Pending")
        s.op("get-deployment-instance", "--deployment-id", first, "--instance-id", "web-2")
        s.op("batch-get-deployment-instances", "--deployment-id", first, "--instance-ids", "web-1", "web-2")
        s.op("stop-deployment", "--deployment-id", first)
        s.op("get-deployment", "--deployment-id", first)
        ids = s.op("list-deployments")["deployments"]
        s.op("batch-get-deployments", "--deployment-ids", *ids)
        s.op("get-application-revision", "--application-name", "shop",
             "--s3-location", "bucket=releases,key=shop-1.0.zip,bundleType=zip,eTag=abc,version=v1")
        s.op("list-application-revisions", "--application-name", "shop", "--sort-by", "registerTime", "--sort-order", "descending")
        s.op("list-application-revisions", "--application-name", "shop", "--deployed", "include")
        s.op("batch-get-application-revisions", "--application-name", "shop", "--revisions",
             '[{"revisionType": "GitHub", "gitHubLocation": {"repository": "acme/shop", "commitId": "0123abc"}}]')
        arn = "arn:aws:codedeploy:local:000000000000:application:shop"
        s.op("tag-resource", "--resource-arn", arn, "--tags", "Key=owner,Value=me")
        s.op("untag-resource", "--resource-arn", arn, "--tag-keys", "team")
        s.op("list-tags-for-resource", "--resource-arn", arn)
        s.op("list-tags-for-resource", "--resource-arn", "arn:aws:codedeploy:local:000000000000:deploymentgroup:shop/prod")
        s.op("delete-application", "--application-name", "tmp2")
        yield s


def command_for(operation):
    return botocore.xform_name(operation, "-")


SERVED = [
    "CreateApplication", "GetApplication", "ListApplications", "BatchGetApplications", "UpdateApplication", "DeleteApplication",
    "CreateDeploymentConfig", "GetDeploymentConfig", "ListDeploymentConfigs", "DeleteDeploymentConfig",
    "CreateDeploymentGroup", "GetDeploymentGroup", "ListDeploymentGroups", "BatchGetDeploymentGroups",
    "UpdateDeploymentGroup", "DeleteDeploymentGroup",
    "RegisterOnPremisesInstance", "DeregisterOnPremisesInstance", "GetOnPremisesInstance", "ListOnPremisesInstances",
    "BatchGetOnPremisesInstances", "AddTagsToOnPremisesInstances", "RemoveTagsFromOnPremisesInstances",
    "RegisterApplicationRevision", "GetApplicationRevision", "ListApplicationRevisions", "BatchGetApplicationRevisions",
    "CreateDeployment", "GetDeployment", "ListDeployments", "BatchGetDeployments", "StopDeployment",
    "ListDeploymentTargets", "GetDeploymentTarget", "BatchGetDeploymentTargets",
    "ListDeploymentInstances", "GetDeploymentInstance", "BatchGetDeploymentInstances",
    "TagResource", "UntagResource", "ListTagsForResource",
]


@pytest.mark.parametrize("operation", SERVED)
def test_output_matches_the_botocore_shape(session, operation):
    command = command_for(operation)
    outputs = session.outputs.get(command)
    assert outputs, f"{command} was not exercised"
    output_shape = MODEL.operation_model(operation).output_shape
    for text in outputs:
        if output_shape is None or not output_shape.members:
            assert text == "", f"{command} has no output members but printed {text!r}"
            continue
        problems = []
        check(json.loads(text), output_shape, operation, problems)
        assert not problems, "\n".join(problems)


def test_the_checker_catches_a_wrong_shape():
    shape = MODEL.operation_model("GetDeployment").output_shape
    problems = []
    check({"deploymentInfo": {"status": "Done", "bogus": 1, "createTime": 5, "deploymentOverview": {"Pending": "1"}}},
          shape, "GetDeployment", problems)
    text = "\n".join(problems)
    assert "'Done' is not a DeploymentStatus value" in text
    assert "bogus: not a member" in text
    assert "expected an ISO 8601 timestamp" in text
    assert "expected an integer" in text
