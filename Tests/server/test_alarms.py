"""Manual alarms over the server (issue 24, part): defined and set through deployctl with --endpoint-url, an alarm
in ALARM stops the deployment that watches it as AWS does, and only keys that may write set it."""
import json

from conftest import deployctl

MESSAGE = ("One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the "
           "affected deployments have been stopped. Activated alarms: <errors-high>")


def test_an_alarm_set_over_the_server_stops_the_deployment_watching_it(server):
    admin = server.env("admin")
    deployctl("put-alarm", "--alarm-name", "errors-high", "--manual", "--endpoint-url", server.url, env=admin)
    described = json.loads(deployctl("describe-alarms", "--endpoint-url", server.url, env=server.env("read-only")).stdout)
    assert [(a["AlarmName"], a["StateValue"]) for a in described["Alarms"]] == [("errors-high", "OK")]

    client = server.client()
    client.register_on_premises_instance(instanceName="web-1", iamUserArn="arn:aws:iam::000000000000:user/web-1")
    client.add_tags_to_on_premises_instances(tags=[{"Key": "role", "Value": "web"}], instanceNames=["web-1"])
    client.create_application(applicationName="shop")
    client.create_deployment_group(
        applicationName="shop", deploymentGroupName="web", serviceRoleArn="arn:aws:iam::0:role/x",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        alarmConfiguration={"enabled": True, "alarms": [{"name": "errors-high"}]})
    deployment = client.create_deployment(applicationName="shop", deploymentGroupName="web", revision={
        "revisionType": "S3", "s3Location": {"bucket": "b", "key": "k.zip", "bundleType": "zip"}})["deploymentId"]

    refused = deployctl("set-alarm-state", "--alarm-name", "errors-high", "--state-value", "ALARM", "--state-reason", "x",
                        "--endpoint-url", server.url, env=server.env("read-only"), check=False)
    assert refused.returncode == 254 and "AccessDeniedException" in refused.stderr
    out = deployctl("set-alarm-state", "--alarm-name", "errors-high", "--state-value", "ALARM", "--state-reason", "5xx above 1 %",
                    "--endpoint-url", server.url, env=server.env("deployer")).stdout
    assert json.loads(out) == {"StoppedDeployments": [deployment]}
    info = client.get_deployment(deploymentId=deployment)["deploymentInfo"]
    assert info["status"] == "Stopped"
    assert info["errorInformation"] == {"code": "ALARM_ACTIVE", "message": MESSAGE}

    missing = deployctl("delete-alarms", "--alarm-names", "errors-high", "nope", "--endpoint-url", server.url, env=admin, check=False)
    assert missing.returncode == 254 and "ResourceNotFound" in missing.stderr
    deployctl("delete-alarms", "--alarm-names", "errors-high", "--endpoint-url", server.url, env=admin)
    assert json.loads(deployctl("describe-alarms", "--endpoint-url", server.url, env=admin).stdout) == {"Alarms": []}
