"""The aws CLI's conventions, checked against the aws CLI itself: the same command with the same --query and --output,
run by `aws deploy` and by `deployctl` against one server, prints the same bytes and exits with the same code."""
import json
import os
import re
import subprocess

import pytest

from conftest import BINARY, ROOT, Server, deployctl


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


# Conventions of the command line itself, on a state file (no server needed).

def clean_environment(**extra):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEPLOYCTL_"))}
    environment.update(extra)
    return environment


def local(tmp_path, *args, env=None, check=False):
    """deployctl on tmp_path's state file (unless the arguments name one)."""
    state = [] if "--state" in args else ["--state", str(tmp_path / "state.db")]
    return deployctl(*args, *state, env=clean_environment(**(env or {})), check=check)


def test_global_options_before_the_subcommand_and_output_from_the_environment(tmp_path):
    local(tmp_path, "create-application", "--application-name", "web", check=True)
    assert local(tmp_path, "--output", "text", "list-applications").stdout == "APPLICATIONS\tweb\n"
    assert local(tmp_path, "--query", "applications[0]", "--output=text", "list-applications").stdout == "web\n"
    assert local(tmp_path, "list-applications", env={"DEPLOYCTL_OUTPUT": "text"}).stdout == "APPLICATIONS\tweb\n"
    assert local(tmp_path, "list-applications", env={"AWS_DEFAULT_OUTPUT": "text"}).stdout == "APPLICATIONS\tweb\n"
    # The flag wins over the environment; DEPLOYCTL_OUTPUT over AWS_DEFAULT_OUTPUT; a bad value is named.
    assert local(tmp_path, "list-applications", "--output", "json", env={"DEPLOYCTL_OUTPUT": "text"}).stdout.startswith("{")
    assert local(tmp_path, "list-applications", env={"DEPLOYCTL_OUTPUT": "json", "AWS_DEFAULT_OUTPUT": "text"}).stdout.startswith("{")
    bad = local(tmp_path, "list-applications", env={"AWS_DEFAULT_OUTPUT": "yaml"})
    assert bad.returncode == 252 and "AWS_DEFAULT_OUTPUT" in bad.stderr
    # Accepted for the aws CLI's sake.
    for flags in (["--no-cli-pager"], ["--color", "off"], ["--color", "on"]):
        assert local(tmp_path, "list-applications", *flags).returncode == 0, flags


def test_help_as_a_word_and_for_a_subcommand_that_does_not_exist(tmp_path):
    for args in (["get-deployment", "help"], ["help", "get-deployment"], ["get-deployment", "--help"]):
        result = local(tmp_path, *args)
        assert result.returncode == 0 and "Gets information about a deployment" in result.stdout, args
    nested = local(tmp_path, "agent", "run", "help")
    assert nested.returncode == 0 and "--instance-name" in nested.stdout
    for args in (["help"], ["--help"], ["agent", "help"]):
        result = local(tmp_path, *args)
        assert result.returncode == 0 and "SUBCOMMANDS" in result.stdout, (args, result.stderr)
    for args in (["nosuch", "--help"], ["help", "nosuch"], ["nosuch", "help"]):
        result = local(tmp_path, *args)
        assert result.returncode == 252 and "'nosuch' is not a deployctl command" in result.stderr, args
        assert result.stdout == ""


def test_skeletons_and_yaml_input(tmp_path):
    skeleton = json.loads(local(tmp_path, "create-deployment-group", "--generate-cli-skeleton", check=True).stdout)
    assert skeleton["onPremisesInstanceTagFilters"] == [{"Key": "", "Value": "", "Type": "KEY_ONLY"}]
    assert list(skeleton)[:3] == ["applicationName", "deploymentGroupName", "deploymentConfigName"]
    output = json.loads(local(tmp_path, "get-application", "--generate-cli-skeleton", "output", check=True).stdout)
    assert set(output["application"]) >= {"applicationId", "applicationName", "createTime", "computePlatform"}
    yaml_skeleton = local(tmp_path, "create-application", "--generate-cli-skeleton", "yaml-input", check=True).stdout
    assert yaml_skeleton.startswith("applicationName: ''\n")
    # Nothing was sent: not even the state file was made.
    assert not (tmp_path / "state.db").exists()
    # A filled-in skeleton goes back in, as JSON or YAML; flags override it.
    (tmp_path / "app.yml").write_text("applicationName: from-yaml\ncomputePlatform: Server\ntags:\n  - Key: team\n    Value: '007'\n")
    local(tmp_path, "create-application", "--cli-input-yaml", f"file://{tmp_path / 'app.yml'}", check=True)
    (tmp_path / "app.json").write_text('{"applicationName": "from-json"}')
    local(tmp_path, "create-application", "--cli-input-json", f"file://{tmp_path / 'app.json'}", "--application-name", "flag-wins", check=True)
    names = json.loads(local(tmp_path, "list-applications", check=True).stdout)["applications"]
    assert names == ["flag-wins", "from-yaml"]
    arn = json.loads(local(tmp_path, "get-application", "--application-name", "from-yaml", check=True).stdout)
    assert arn["application"]["applicationName"] == "from-yaml"
    both = local(tmp_path, "create-application", "--cli-input-yaml", "applicationName: a", "--cli-input-json", "{}")
    assert both.returncode == 252
    bad = local(tmp_path, "create-application", "--cli-input-yaml", "applicationName: [unclosed")
    assert bad.returncode == 252 and "--cli-input-yaml" in bad.stderr
    # wait takes --cli-input-json too.
    waited = local(tmp_path, "wait", "deployment-successful", "--cli-input-json", '{"deploymentId": "d-ABCDEFGHI"}')
    assert waited.returncode == 255 and "DeploymentDoesNotExistException" in waited.stderr


def test_file_and_fileb_for_plain_values_and_debug(tmp_path):
    (tmp_path / "name.txt").write_text("from-file")
    local(tmp_path, "create-application", "--application-name", f"file://{tmp_path / 'name.txt'}", check=True)
    local(tmp_path, "update-application", "--application-name", "from-file", "--new-application-name", f"fileb://{tmp_path / 'name.txt'}",
          check=True)
    assert json.loads(local(tmp_path, "list-applications", check=True).stdout)["applications"] == ["from-file"]
    missing = local(tmp_path, "create-application", "--application-name", f"file://{tmp_path / 'none.txt'}")
    assert missing.returncode == 252 and "--application-name" in missing.stderr and "none.txt" in missing.stderr
    debug = local(tmp_path, "list-applications", "--debug", check=True)
    assert "debug: ListApplications {} -> the state file" in debug.stderr and " ms" in debug.stderr


def test_a_read_only_command_never_creates_a_named_state_file(tmp_path):
    missing = tmp_path / "typo.db"
    for args in (["list-applications"], ["get-deployment", "--deployment-id", "d-ABCDEFGHI"], ["agent", "list"],
                 ["wait", "deployment-successful", "--deployment-id", "d-ABCDEFGHI"]):
        result = local(tmp_path, *args, "--state", str(missing))
        assert result.returncode == 255 and f"no state file at {missing}" in result.stderr, (args, result.stderr)
        result = deployctl(*args, env=clean_environment(DEPLOYCTL_STATE=str(missing)), check=False)
        assert result.returncode == 255 and "$DEPLOYCTL_STATE" in result.stderr, (args, result.stderr)
    assert not missing.exists()
    # A command that writes makes it.
    local(tmp_path, "create-application", "--application-name", "web", "--state", str(missing), check=True)
    assert missing.exists()


def write_revision(directory, appspec, scripts=()):
    os.makedirs(directory / "site", exist_ok=True)
    (directory / "site" / "index.html").write_text("hi\n")
    (directory / "appspec.yml").write_text(appspec)
    for name, body, mode in scripts:
        path = directory / name
        os.makedirs(path.parent, exist_ok=True)
        path.write_text(body)
        os.chmod(path, mode)


def test_validate_for_ci_codes_exit_codes_and_formats(tmp_path):
    clean = tmp_path / "clean"
    write_revision(clean, "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv\n")
    warned = tmp_path / "warned"
    write_revision(warned, "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n",
                   [("start.sh", "#!/bin/bash\nsleep 100 &\n", 0o755)])
    broken = tmp_path / "broken"
    write_revision(broken, "version: 0.0\nos: linux\nfiles:\n  - source: nowhere\n    destination: /srv\nhooks:\n  AfterInstal:\n"
                           "    - location: x.sh\n")

    def validate(target, *args):
        return deployctl("validate", "--source", str(target), *args, env=clean_environment(), check=False)

    assert validate(clean).returncode == 0
    assert validate(warned).returncode == 0
    assert validate(warned, "--strict").returncode == 1
    text = validate(broken)
    assert text.returncode == 1
    assert re.search(r"^appspec\.yml:4:5: error RV\d{3}: files\[0\]\.source: 'nowhere' is not in the revision$", text.stdout, re.M), text.stdout
    assert re.search(r"^appspec\.yml:7:3: error AS\d{3}: hooks\.AfterInstal: unknown lifecycle event", text.stdout, re.M), text.stdout
    # The codes are stable: the same finding has the same code in every format.
    report = json.loads(validate(broken, "--output", "json").stdout)
    assert report["schemaVersion"] == 2 and report["valid"] is False and report["readable"] is True
    codes = {f["key"]: f["code"] for f in report["findings"]}
    assert re.fullmatch(r"AS\d{3}", codes["hooks.AfterInstal"]) and re.fullmatch(r"RV\d{3}", codes["files[0].source"])
    assert all({"code", "severity", "file", "line", "column", "key", "message"} <= set(f) for f in report["findings"])
    github = validate(broken, "--output", "github").stdout.splitlines()
    assert f"::error file={broken}/appspec.yml,line=7,col=3,title={codes['hooks.AfterInstal']} hooks.AfterInstal::hooks.AfterInstal: unknown lifecycle event 'AfterInstal'; did you mean 'AfterInstall'?" in github, github
    sarif = json.loads(validate(broken, "--output", "sarif").stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "deployctl"
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == set(codes.values()) | {f["code"] for f in report["findings"]}
    located = [r for r in run["results"] if r["ruleId"] == codes["hooks.AfterInstal"]][0]
    assert located["level"] == "error"
    assert located["locations"][0]["physicalLocation"]["region"] == {"startLine": 7, "startColumn": 3}
    assert located["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == f"{broken}/appspec.yml"
    # 2: the revision cannot be read at all; an unsafe bundle is a finding (1).
    missing = validate(tmp_path / "nope")
    assert missing.returncode == 2 and "RV001" in missing.stdout
    (tmp_path / "garbage.zip").write_bytes(b"this is not an archive")
    garbage = deployctl("validate", "--bundle", str(tmp_path / "garbage.zip"), env=clean_environment(), check=False)
    assert garbage.returncode == 2, garbage.stdout
    unsafe = tmp_path / "unsafe.tar"
    import tarfile, io
    with tarfile.open(unsafe, "w") as archive:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    result = deployctl("validate", "--bundle", str(unsafe), env=clean_environment(), check=False)
    assert result.returncode == 1 and "RV109" in result.stdout, result.stdout


def test_push_prints_json_when_asked(tmp_path):
    revision = tmp_path / "rev"
    write_revision(revision, "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv\n")
    local(tmp_path, "create-application", "--application-name", "web", check=True)
    text = local(tmp_path, "push", "--application-name", "web", "--s3-location", "s3://releases/a.zip", "--source", str(revision), check=True)
    assert text.stdout.startswith("To deploy with this revision, run:\n")
    pushed = json.loads(local(tmp_path, "push", "--application-name", "web", "--s3-location", "s3://releases/b.zip", "--source",
                              str(revision), "--output", "json", check=True).stdout)
    assert pushed["revision"]["s3Location"]["key"] == "b.zip" and len(pushed["revision"]["s3Location"]["eTag"]) == 64
    assert pushed["bundle"]["entries"] >= 2 and pushed["createDeploymentCommand"].startswith("deployctl create-deployment")
    key = local(tmp_path, "push", "--application-name", "web", "--s3-location", "s3://releases/c.zip", "--source", str(revision),
                "--query", "revision.s3Location.key", "--output", "text", check=True)
    assert key.stdout == "c.zip\n"


def test_man_pages_and_completions_cover_every_subcommand(tmp_path):
    out = tmp_path / "man1"
    subprocess_run = subprocess.run
    made = subprocess_run(["python3", os.path.join(ROOT, "Scripts", "generate-man.py"), BINARY, str(out)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    info = json.loads(subprocess_run([BINARY, "--experimental-dump-help"], capture_output=True, text=True, check=True).stdout)

    def names(command, path):
        yield "-".join(path)
        for sub in command.get("subcommands", []):
            if sub.get("shouldDisplay", True):
                yield from names(sub, path + [sub["commandName"]])

    expected = set(names(info["command"], ["deployctl"]))
    assert {p.name[:-2] for p in out.iterdir()} == expected
    assert {"deployctl-create-deployment", "deployctl-agent-run", "deployctl-wait-deployment-successful", "deployctl-logs"} <= expected
    for name in ("deployctl", "deployctl-create-deployment", "deployctl-agent-run"):
        # Undefined macros and bad escapes are mistakes; line-adjustment notes are not.
        rendered = subprocess_run(["groff", "-man", "-Tutf8", "-wmac", "-wescape", "-wchar", str(out / f"{name}.1")], capture_output=True, text=True)
        problems = [line for line in rendered.stderr.splitlines() if "cannot adjust line" not in line and "can't break line" not in line]
        assert rendered.returncode == 0 and problems == [], problems
    page = (out / "deployctl-create-deployment.1").read_text()
    assert ".SH OPTIONS" in page and "\\-\\-s3\\-location" in page and "\\-\\-wait" in page
    for shell in ("bash", "zsh", "fish"):
        script = subprocess_run([BINARY, "--generate-completion-script", shell], capture_output=True, text=True)
        assert script.returncode == 0 and "create-deployment" in script.stdout, shell
    bash = tmp_path / "deployctl.bash"
    bash.write_text(subprocess_run([BINARY, "--generate-completion-script", "bash"], capture_output=True, text=True).stdout)
    assert subprocess_run(["bash", "-n", str(bash)]).returncode == 0


def test_every_operation_of_botocore_is_a_subcommand_with_the_output_shape(tmp_path):
    import botocore.session
    model = botocore.session.get_session().get_service_model("codedeploy")
    for operation in model.operation_names:
        name = botocore.xform_name(operation, "-")
        help_text = deployctl(name, "--help", env=clean_environment(), check=False)
        assert help_text.returncode == 0, f"{operation}: deployctl {name} is missing"
        skeleton = json.loads(deployctl(name, "--generate-cli-skeleton", "output", env=clean_environment()).stdout)
        output = model.operation_model(operation).output_shape
        assert list(skeleton) == (list(output.members) if output is not None else []), operation
