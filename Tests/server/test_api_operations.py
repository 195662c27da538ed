"""Every CodeDeploy operation deployctl serves, once on its happy path and once on its main error, through the real
aws CLI (`aws deploy … --endpoint-url … --ca-bundle …`) and through boto3, against `deployctl server`.
"""
import json
import re

import botocore.exceptions
import botocore.session
import pytest

APP = "web-shop"
GROUP = "prod"
CONFIG = "TwoAtATime"
ROLE = "arn:aws:iam::000000000000:role/CodeDeploy"
S3 = {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "web-1.zip", "bundleType": "zip"}}
BAD_DEPLOYMENT = "d-ABCDEFGHI"
LONG_NAME = "x" * 101

# (operation, request, expected error code or None). "{deploymentId}" and "{appArn}" are filled in from earlier
# answers. Each error case leaves the state as it was.
SCENARIO = [
    ("CreateApplication", {"applicationName": APP}, None),
    ("CreateApplication", {"applicationName": APP}, "ApplicationAlreadyExistsException"),
    ("CreateApplication", {"applicationName": "other", "computePlatform": "Mainframe"}, "InvalidComputePlatformException"),
    ("GetApplication", {"applicationName": APP}, None),
    ("GetApplication", {"applicationName": "nope"}, "ApplicationDoesNotExistException"),
    ("ListApplications", {}, None),
    ("ListApplications", {"nextToken": "not-a-token"}, "InvalidNextTokenException"),
    ("BatchGetApplications", {"applicationNames": [APP]}, None),
    ("BatchGetApplications", {"applicationNames": [APP, "nope"]}, "ApplicationDoesNotExistException"),
    ("UpdateApplication", {"applicationName": APP, "newApplicationName": APP + "-2"}, None),
    ("UpdateApplication", {"applicationName": APP + "-2", "newApplicationName": APP}, None),
    ("UpdateApplication", {"applicationName": "nope", "newApplicationName": "other"}, "ApplicationDoesNotExistException"),
    ("CreateDeploymentConfig", {"deploymentConfigName": CONFIG, "minimumHealthyHosts": {"type": "HOST_COUNT", "value": 0}}, None),
    ("CreateDeploymentConfig", {"deploymentConfigName": CONFIG, "minimumHealthyHosts": {"type": "HOST_COUNT", "value": 0}},
     "DeploymentConfigAlreadyExistsException"),
    ("GetDeploymentConfig", {"deploymentConfigName": CONFIG}, None),
    ("GetDeploymentConfig", {"deploymentConfigName": "nope"}, "DeploymentConfigDoesNotExistException"),
    ("ListDeploymentConfigs", {}, None),
    ("ListDeploymentConfigs", {"nextToken": "not-a-token"}, "InvalidNextTokenException"),
    ("RegisterOnPremisesInstance", {"instanceName": "h1", "iamUserArn": "arn:aws:iam::000000000000:user/h1"}, None),
    ("RegisterOnPremisesInstance", {"instanceName": "h1", "iamUserArn": "arn:aws:iam::000000000000:user/h1"},
     "InstanceNameAlreadyRegisteredException"),
    ("AddTagsToOnPremisesInstances", {"tags": [{"Key": "env", "Value": "prod"}], "instanceNames": ["h1"]}, None),
    ("AddTagsToOnPremisesInstances", {"tags": [{"Key": "env", "Value": "prod"}], "instanceNames": ["nope"]},
     "InstanceNotRegisteredException"),
    ("GetOnPremisesInstance", {"instanceName": "h1"}, None),
    ("GetOnPremisesInstance", {"instanceName": "nope"}, "InstanceNotRegisteredException"),
    ("ListOnPremisesInstances", {}, None),
    ("ListOnPremisesInstances", {"nextToken": "not-a-token"}, "InvalidNextTokenException"),
    # An enum value is the service's to check (botocore sends it as is): the operation's own exception.
    ("ListOnPremisesInstances", {"registrationStatus": "Bogus"}, "InvalidRegistrationStatusException"),
    ("BatchGetOnPremisesInstances", {"instanceNames": ["h1"]}, None),
    ("BatchGetOnPremisesInstances", {"instanceNames": [LONG_NAME * 2]}, "InvalidInstanceNameException"),
    ("CreateDeploymentGroup", {"applicationName": APP, "deploymentGroupName": GROUP, "serviceRoleArn": ROLE,
                               "deploymentConfigName": CONFIG,
                               "onPremisesInstanceTagFilters": [{"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}]}, None),
    ("CreateDeploymentGroup", {"applicationName": APP, "deploymentGroupName": GROUP, "serviceRoleArn": ROLE},
     "DeploymentGroupAlreadyExistsException"),
    ("CreateDeploymentGroup", {"applicationName": APP, "deploymentGroupName": "both", "serviceRoleArn": ROLE,
                               "onPremisesInstanceTagFilters": [{"Key": "a", "Type": "KEY_ONLY"}],
                               "onPremisesTagSet": {"onPremisesTagSetList": [[{"Key": "b", "Type": "KEY_ONLY"}]]}},
     "InvalidOnPremisesTagCombinationException"),
    ("CreateDeploymentGroup", {"applicationName": APP, "deploymentGroupName": "bad-type", "serviceRoleArn": ROLE,
                               "onPremisesInstanceTagFilters": [{"Key": "a", "Type": "SOMETIMES"}]}, "InvalidTagException"),
    ("GetDeploymentGroup", {"applicationName": APP, "deploymentGroupName": GROUP}, None),
    ("GetDeploymentGroup", {"applicationName": APP, "deploymentGroupName": "nope"}, "DeploymentGroupDoesNotExistException"),
    ("ListDeploymentGroups", {"applicationName": APP}, None),
    ("ListDeploymentGroups", {"applicationName": "nope"}, "ApplicationDoesNotExistException"),
    ("BatchGetDeploymentGroups", {"applicationName": APP, "deploymentGroupNames": [GROUP]}, None),
    ("BatchGetDeploymentGroups", {"applicationName": "nope", "deploymentGroupNames": [GROUP]}, "ApplicationDoesNotExistException"),
    ("UpdateDeploymentGroup", {"applicationName": APP, "currentDeploymentGroupName": GROUP, "deploymentConfigName": CONFIG}, None),
    ("UpdateDeploymentGroup", {"applicationName": APP, "currentDeploymentGroupName": "nope"}, "DeploymentGroupDoesNotExistException"),
    ("RegisterApplicationRevision", {"applicationName": APP, "revision": S3}, None),
    ("RegisterApplicationRevision", {"applicationName": "nope", "revision": S3}, "ApplicationDoesNotExistException"),
    ("GetApplicationRevision", {"applicationName": APP, "revision": S3}, None),
    ("GetApplicationRevision", {"applicationName": APP, "revision": {"revisionType": "S3", "s3Location": {
        "bucket": "releases", "key": "other.zip", "bundleType": "zip"}}}, "RevisionDoesNotExistException"),
    ("ListApplicationRevisions", {"applicationName": APP}, None),
    ("ListApplicationRevisions", {"applicationName": "nope"}, "ApplicationDoesNotExistException"),
    ("BatchGetApplicationRevisions", {"applicationName": APP, "revisions": [S3]}, None),
    ("BatchGetApplicationRevisions", {"applicationName": "nope", "revisions": [S3]}, "ApplicationDoesNotExistException"),
    ("CreateDeployment", {"applicationName": APP, "deploymentGroupName": GROUP, "revision": S3}, None),
    ("CreateDeployment", {"applicationName": APP, "deploymentGroupName": GROUP, "revision": S3}, "DeploymentLimitExceededException"),
    ("GetDeployment", {"deploymentId": "{deploymentId}"}, None),
    ("GetDeployment", {"deploymentId": BAD_DEPLOYMENT}, "DeploymentDoesNotExistException"),
    ("ListDeployments", {"applicationName": APP, "deploymentGroupName": GROUP}, None),
    ("ListDeployments", {"applicationName": APP, "deploymentGroupName": "nope"}, "DeploymentGroupDoesNotExistException"),
    ("ListDeployments", {"includeOnlyStatuses": ["Done"]}, "InvalidDeploymentStatusException"),
    ("BatchGetDeployments", {"deploymentIds": ["{deploymentId}"]}, None),
    ("BatchGetDeployments", {"deploymentIds": ["not a deployment id!"]}, "InvalidDeploymentIdException"),
    ("ListDeploymentTargets", {"deploymentId": "{deploymentId}"}, None),
    ("ListDeploymentTargets", {"deploymentId": BAD_DEPLOYMENT}, "DeploymentDoesNotExistException"),
    ("GetDeploymentTarget", {"deploymentId": "{deploymentId}", "targetId": "h1"}, None),
    ("GetDeploymentTarget", {"deploymentId": "{deploymentId}", "targetId": "nope"}, "DeploymentTargetDoesNotExistException"),
    ("BatchGetDeploymentTargets", {"deploymentId": "{deploymentId}", "targetIds": ["h1"]}, None),
    ("BatchGetDeploymentTargets", {"deploymentId": BAD_DEPLOYMENT, "targetIds": ["h1"]}, "DeploymentDoesNotExistException"),
    ("ListDeploymentInstances", {"deploymentId": "{deploymentId}"}, None),
    ("ListDeploymentInstances", {"deploymentId": BAD_DEPLOYMENT}, "DeploymentDoesNotExistException"),
    ("GetDeploymentInstance", {"deploymentId": "{deploymentId}", "instanceId": "h1"}, None),
    ("GetDeploymentInstance", {"deploymentId": "{deploymentId}", "instanceId": "nope"}, "InstanceDoesNotExistException"),
    ("BatchGetDeploymentInstances", {"deploymentId": "{deploymentId}", "instanceIds": ["h1"]}, None),
    ("BatchGetDeploymentInstances", {"deploymentId": BAD_DEPLOYMENT, "instanceIds": ["h1"]}, "DeploymentDoesNotExistException"),
    # Blue/green and Lambda/ECS operations on this in-place deployment: refused the way CodeDeploy refuses them for
    # such a deployment (Tests/traffic continues real blue/green ones).
    ("ContinueDeployment", {"deploymentId": "{deploymentId}"}, "DeploymentIsNotInReadyStateException"),
    ("SkipWaitTimeForInstanceTermination", {"deploymentId": "{deploymentId}"}, "UnsupportedActionForDeploymentTypeException"),
    ("PutLifecycleEventHookExecutionStatus", {"deploymentId": "{deploymentId}", "lifecycleEventHookExecutionId": "h-1", "status": "Succeeded"},
     "UnsupportedActionForDeploymentTypeException"),
    ("PutLifecycleEventHookExecutionStatus", {"deploymentId": BAD_DEPLOYMENT, "lifecycleEventHookExecutionId": "h-1", "status": "Failed"},
     "DeploymentDoesNotExistException"),
    ("StopDeployment", {"deploymentId": "{deploymentId}"}, None),
    ("ContinueDeployment", {"deploymentId": "{deploymentId}"}, "DeploymentAlreadyCompletedException"),
    ("ContinueDeployment", {"deploymentId": BAD_DEPLOYMENT}, "DeploymentDoesNotExistException"),
    ("SkipWaitTimeForInstanceTermination", {"deploymentId": "{deploymentId}"}, "DeploymentAlreadyCompletedException"),
    ("SkipWaitTimeForInstanceTermination", {"deploymentId": "not a deployment id!"}, "InvalidDeploymentIdException"),
    ("ListGitHubAccountTokenNames", {}, None),
    ("ListGitHubAccountTokenNames", {"nextToken": "not-a-token"}, "InvalidNextTokenException"),
    ("DeleteGitHubAccountToken", {"tokenName": "mine"}, "GitHubAccountTokenDoesNotExistException"),
    ("DeleteGitHubAccountToken", {}, "GitHubAccountTokenNameRequiredException"),
    ("DeleteResourcesByExternalId", {"externalId": "stack-1"}, None),
    ("StopDeployment", {"deploymentId": "{deploymentId}"}, "DeploymentAlreadyCompletedException"),
    ("TagResource", {"ResourceArn": "{appArn}", "Tags": [{"Key": "team", "Value": "web"}]}, None),
    ("TagResource", {"ResourceArn": "arn:aws:codedeploy:us-east-1:000000000000:application:nope", "Tags": [{"Key": "a", "Value": "b"}]},
     "ApplicationDoesNotExistException"),
    ("ListTagsForResource", {"ResourceArn": "{appArn}"}, None),
    ("ListTagsForResource", {"ResourceArn": "not-an-arn"}, "InvalidArnException"),
    ("UntagResource", {"ResourceArn": "{appArn}", "TagKeys": ["team"]}, None),
    ("UntagResource", {"ResourceArn": "not-an-arn", "TagKeys": ["team"]}, "InvalidArnException"),
    ("RemoveTagsFromOnPremisesInstances", {"tags": [{"Key": "env", "Value": "prod"}], "instanceNames": ["h1"]}, None),
    ("RemoveTagsFromOnPremisesInstances", {"tags": [{"Key": "env", "Value": "prod"}], "instanceNames": ["nope"]},
     "InstanceNotRegisteredException"),
    ("DeregisterOnPremisesInstance", {"instanceName": "h1"}, None),
    ("DeregisterOnPremisesInstance", {"instanceName": LONG_NAME * 2}, "InvalidInstanceNameException"),
    ("DeleteDeploymentGroup", {"applicationName": APP, "deploymentGroupName": GROUP}, None),
    ("DeleteDeploymentGroup", {"applicationName": "nope", "deploymentGroupName": GROUP}, "ApplicationDoesNotExistException"),
    ("DeleteDeploymentConfig", {"deploymentConfigName": CONFIG}, None),
    ("DeleteDeploymentConfig", {"deploymentConfigName": "CodeDeployDefault.OneAtATime"}, "InvalidOperationException"),
    ("DeleteApplication", {"applicationName": APP}, None),
    ("DeleteApplication", {"applicationName": LONG_NAME}, "InvalidApplicationNameException"),
]

SERVED = {op for op, _, _ in SCENARIO}
# Operations with no happy path here (blue/green waits: Tests/traffic; Lambda/ECS hooks, GitHub connections): two refusals each instead.
REFUSED_BY_DESIGN = {"ContinueDeployment", "SkipWaitTimeForInstanceTermination", "PutLifecycleEventHookExecutionStatus",
                     "DeleteGitHubAccountToken"}
# The model lists no errors for it.
NO_MODELLED_ERRORS = {"DeleteResourcesByExternalId"}


def test_the_scenario_covers_every_operation_deployctl_serves():
    names = set(re.findall(r'"([A-Za-z]+)"', open(__file__.replace("Tests/server/test_api_operations.py",
                                                                   "Scripts/generate-model.py")).read().split("OPERATIONS = [")[1].split("]")[0]))
    assert names == SERVED
    for op in SERVED:
        if op in REFUSED_BY_DESIGN:
            assert len({err for o, _, err in SCENARIO if o == op and err}) >= 2, f"{op}: fewer than two refusals"
            continue
        assert any(err is None for o, _, err in SCENARIO if o == op), f"{op}: no happy path"
        if op not in NO_MODELLED_ERRORS:
            assert any(err is not None for o, _, err in SCENARIO if o == op), f"{op}: no error case"


def fill(value, known):
    text = json.dumps(value)
    for name, replacement in known.items():
        text = text.replace("{" + name + "}", replacement)
    return json.loads(text)


def kebab(operation):
    return re.sub(r"(?<!^)(?=[A-Z])", "-", operation).lower()


def remember(operation, answer, known, server):
    if operation == "CreateDeployment":
        known["deploymentId"] = answer["deploymentId"]
    if operation == "CreateApplication":
        known["appArn"] = f"arn:aws:codedeploy:local:000000000000:application:{APP}"


def test_every_operation_through_boto3(server):
    client = server.client()
    model = botocore.session.get_session().get_service_model("codedeploy")
    known = {}
    for operation, request, expected in SCENARIO:
        request = fill(request, known)
        method = getattr(client, botocore.xform_name(operation))
        if expected is None:
            answer = method(**request)
            assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200, (operation, answer)
            output = model.operation_model(operation).output_shape
            if output is not None:
                for member in output.required_members:
                    assert member in answer, f"{operation}: required {member} missing from {answer}"
            remember(operation, answer, known, server)
        else:
            with pytest.raises(botocore.exceptions.ClientError) as raised:
                method(**request)
            error = raised.value.response
            assert error["Error"]["Code"] == expected, (operation, request, error)
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 400, (operation, error)
            assert error["Error"]["Message"], (operation, error)
            # A modeled exception resolves to its class, as boto3 users catch it.
            if expected != "ValidationException":
                assert isinstance(raised.value, getattr(client.exceptions, expected)), (operation, type(raised.value))


def test_every_operation_through_the_aws_cli(server):
    known = {}
    for operation, request, expected in SCENARIO:
        request = fill(request, known)
        result = server.aws("deploy", kebab(operation), "--cli-input-json", json.dumps(request), "--output", "json")
        if expected is None:
            assert result.returncode == 0, (operation, result.stderr)
            answer = json.loads(result.stdout) if result.stdout.strip() else {}
            remember(operation, answer, known, server)
        else:
            assert result.returncode == 255, (operation, result.returncode, result.stdout, result.stderr)
            assert f"An error occurred ({expected}) when calling the {operation} operation" in result.stderr, (operation, result.stderr)


def test_lambda_and_ecs_resources_round_trip_through_boto3(server):
    """What Terraform's AWS provider or a moto-based suite creates for ECS and Lambda is stored and returned."""
    client = server.client()
    client.create_application(applicationName="api", computePlatform="ECS")
    ecs_group = {
        "applicationName": "api", "deploymentGroupName": "blue-green", "serviceRoleArn": ROLE,
        "deploymentConfigName": "CodeDeployDefault.ECSCanary10Percent5Minutes",
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 5},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"}},
        "ecsServices": [{"serviceName": "api", "clusterName": "main"}],
        "loadBalancerInfo": {"targetGroupPairInfoList": [{"targetGroups": [{"name": "blue"}, {"name": "green"}],
                                                          "prodTrafficRoute": {"listenerArns": ["arn:aws:elasticloadbalancing:listener/1"]}}]},
    }
    client.create_deployment_group(**ecs_group)
    info = client.get_deployment_group(applicationName="api", deploymentGroupName="blue-green")["deploymentGroupInfo"]
    assert info["computePlatform"] == "ECS"
    for member in ("deploymentConfigName", "deploymentStyle", "blueGreenDeploymentConfiguration", "ecsServices", "loadBalancerInfo"):
        assert info[member] == ecs_group[member], member
    client.create_application(applicationName="fn", computePlatform="Lambda")
    client.create_deployment_config(deploymentConfigName="Linear25", computePlatform="Lambda",
                                    trafficRoutingConfig={"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 2}})
    client.create_deployment_group(applicationName="fn", deploymentGroupName="live", serviceRoleArn=ROLE, deploymentConfigName="Linear25")
    config = client.get_deployment_config(deploymentConfigName="Linear25")["deploymentConfigInfo"]
    assert config["computePlatform"] == "Lambda" and config["trafficRoutingConfig"]["timeBasedLinear"] == {"linearPercentage": 25, "linearInterval": 2}
    names = client.list_deployment_configs()["deploymentConfigsList"]
    assert {"CodeDeployDefault.LambdaAllAtOnce", "CodeDeployDefault.ECSAllAtOnce", "CodeDeployDefault.OneAtATime", "Linear25"} <= set(names)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        client.create_deployment(applicationName="fn", deploymentGroupName="live",
                                 revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "version: 0.0"}})
    assert refused.value.response["Error"]["Code"] == "InvalidComputePlatformException"
    assert client.list_deployments()["deployments"] == []
