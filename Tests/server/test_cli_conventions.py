"""The aws CLI's conventions, checked against the aws CLI itself: the same command with the same --query and --output,
run by `aws deploy` and by `deployctl` against one server, prints the same bytes and exits with the same code."""
import json

import pytest

from conftest import Server, deployctl


@pytest.fixture(scope="module")
def filled():
    s = Server()
    try:
        def run(*args):
            result = deployctl(*args, "--endpoint-url", s.url, env=s.env("admin"), check=False)
            assert result.returncode == 0, (args, result.stderr)
            return result.stdout
        run("create-application", "--application-name", "web")
        run("create-application", "--application-name", "api")
        for i, env in ((1, "prod"), (2, "prod"), (3, "test")):
            run("register-on-premises-instance", "--instance-name", f"web-{i}", "--iam-user-arn", f"arn:aws:iam::000000000000:user/web-{i}")
            run("add-tags-to-on-premises-instances", "--instance-names", f"web-{i}", "--tags", f"Key=env,Value={env}", f"Key=n,Value={i}")
        run("create-deployment-group", "--application-name", "web", "--deployment-group-name", "prod",
            "--on-premises-instance-tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE")
        deployments = []
        for key in ("a.zip", "b.zip"):
            out = run("create-deployment", "--application-name", "web", "--deployment-group-name", "prod",
                      "--s3-location", f"bucket=releases,key={key},bundleType=zip", "--query", "deploymentId", "--output", "text")
            deployments.append(out.strip())
            run("stop-deployment", "--deployment-id", deployments[-1])
        yield s, deployments
    finally:
        assert s.stop() == 0


QUERIES = [
    (["list-applications"], "applications"),
    (["list-applications"], "applications[0]"),
    (["list-applications"], "length(applications)"),
    (["list-applications"], "sort(applications) | reverse(@) | join(', ', @)"),
    (["list-on-premises-instances"], "instanceNames[?starts_with(@, 'web')]"),
    (["list-on-premises-instances"], "instanceNames[-1]"),
    (["batch-get-on-premises-instances", "--instance-names", "web-1", "web-3"], "instanceInfos[].{name: instanceName, tags: tags[].Value}"),
    (["batch-get-on-premises-instances", "--instance-names", "web-1", "web-3"], "instanceInfos[?instanceName=='web-3'].tags[?Key=='env'].Value[]"),
    (["batch-get-on-premises-instances", "--instance-names", "web-1", "web-2"], "instanceInfos[].[instanceName, length(tags)]"),
    (["get-deployment-group", "--application-name", "web", "--deployment-group-name", "prod"], "deploymentGroupInfo.[applicationName, deploymentGroupName]"),
    (["get-deployment-group", "--application-name", "web", "--deployment-group-name", "prod"], "deploymentGroupInfo.onPremisesInstanceTagFilters"),
    (["get-deployment-group", "--application-name", "web", "--deployment-group-name", "prod"], "deploymentGroupInfo.nothing"),
    (["list-deployments", "--application-name", "web", "--deployment-group-name", "prod"], "length(deployments)"),
    (["get-deployment", "--deployment-id", "{0}"], "deploymentInfo.status"),
    (["get-deployment", "--deployment-id", "{0}"], "deploymentInfo.{status: status, overview: deploymentOverview, creator: creator}"),
    (["get-deployment", "--deployment-id", "{0}"], "deploymentInfo.status == 'Stopped'"),
    (["get-deployment", "--deployment-id", "{0}"], "deploymentInfo.revision.s3Location.[bucket, key]"),
    (["batch-get-deployments", "--deployment-ids", "{0}", "{1}"], "deploymentsInfo[].deploymentId | sort(@) | length(@)"),
    (["list-deployment-configs"], "deploymentConfigsList[?contains(@, 'AllAtOnce')]"),
    (["list-deployment-configs"], "deploymentConfigsList[?starts_with(@, 'CodeDeployDefault.Lambda')] | [:2]"),
]


# Tables are for people: deployctl draws them its own way (awscli v1 repeats a list's title per element and drops
# scalars), so only json and text are compared byte for byte; a table must still render.
@pytest.mark.parametrize("output", ["json", "text", "table"])
@pytest.mark.parametrize("command,query", QUERIES, ids=[q for _, q in QUERIES])
def test_query_and_output_print_what_the_aws_cli_prints(filled, command, query, output):
    server, deployments = filled
    args = [a.format(*deployments) for a in command] + ["--query", query, "--output", output]
    theirs = server.aws("deploy", *args, role="read-only")
    ours = deployctl(*args, "--endpoint-url", server.url, env=server.env("read-only"), check=False)
    assert theirs.returncode == 0, theirs.stderr
    if output == "table":
        assert ours.returncode == 0 and ours.stdout.startswith("-"), ours.stderr
    else:
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), ours.stderr


@pytest.mark.parametrize("query", ["applications[", "applications.[", "foo ==", "'unclosed", "a[0:1:2:3]"])
def test_a_bad_query_is_a_usage_error_before_anything_runs(filled, query):
    server, _ = filled
    theirs = server.aws("deploy", "create-application", "--application-name", "never-made", "--query", query)
    ours = deployctl("create-application", "--application-name", "never-made", "--query", query, "--endpoint-url", server.url,
                     env=server.env("admin"), check=False)
    # aws CLI v2 exits 252 on a bad parameter (deployctl follows v2; the v1 installed here exits 255).
    assert theirs.returncode != 0 and ours.returncode == 252, (theirs.stderr, ours.stderr)
    assert ours.stdout == "" and "Bad value for --query" in ours.stderr
    listed = json.loads(deployctl("list-applications", "--endpoint-url", server.url, env=server.env("admin")).stdout)
    assert "never-made" not in listed["applications"]


@pytest.fixture(scope="module")
def many():
    """A server with 130 instances: more than one page (100) of list-on-premises-instances."""
    s = Server()
    try:
        client = s.client()
        client.create_application(applicationName="web")
        for i in range(130):
            client.register_on_premises_instance(instanceName=f"i-{i:03d}", iamUserArn=f"arn:aws:iam::000000000000:user/i{i}")
        yield s
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize("args", [
    ["--max-items", "3"], ["--max-items", "100"], ["--max-items", "110"], ["--max-items", "130"], ["--max-items", "0"],
    ["--max-items", "2", "--output", "text"], ["--max-items", "105", "--query", "length(instanceNames)"],
    ["--query", "length(instanceNames)"], ["--no-paginate", "--query", "[length(instanceNames), nextToken != null]"],
])
def test_max_items_prints_what_the_aws_cli_prints_with_the_same_next_token(many, args):
    theirs = many.aws("deploy", "list-on-premises-instances", *args)
    ours = deployctl("list-on-premises-instances", *args, "--endpoint-url", many.url, env=many.env("admin"), check=False)
    assert theirs.returncode == 0, theirs.stderr
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), ours.stderr


def test_a_next_token_resumes_in_either_cli(many):
    def ours(*args):
        out = deployctl("list-on-premises-instances", *args, "--endpoint-url", many.url, env=many.env("admin"))
        return json.loads(out.stdout)

    seen = []
    token = None
    # Walk the whole list 40 at a time with deployctl's tokens, alternating which CLI takes the next step.
    for step in range(5):
        args = ["--max-items", "40"] + (["--starting-token", token] if token else [])
        if step % 2:
            result = many.aws("deploy", "list-on-premises-instances", *args)
            assert result.returncode == 0, result.stderr
            page = json.loads(result.stdout)
        else:
            page = ours(*args)
        seen += page["instanceNames"]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"i-{i:03d}" for i in range(130)]
    bad = deployctl("list-on-premises-instances", "--max-items", "-1", "--endpoint-url", many.url, env=many.env("admin"), check=False)
    assert bad.returncode == 252 and "--max-items" in bad.stderr
