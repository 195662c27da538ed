"""deployctl's agent on hosts that only reach `deployctl server` over HTTPS, set up with `deployctl register`: it
speaks CodeDeploy's command protocol (the one AWS's agent speaks), deploys, reports failures with their log tail,
survives being killed, and a host whose agent never comes back is failed on the server's clock."""
import json
import os
import signal
import subprocess
import time

import pytest
import requests

from conftest import BINARY, Server, deployctl


class Host:
    """One simulated host: its files from `deployctl register`, its agent process."""

    def __init__(self, server, name, tags="Key=fleet,Value=web"):
        self.server = server
        self.name = name
        self.dir = os.path.join(server.directory, "hosts", name)
        os.makedirs(os.path.dirname(self.dir), exist_ok=True)
        result = deployctl("register", "--state", server.state, "--instance-name", name, "--tags", tags,
                           "--endpoint-url", server.url, "--output-dir", self.dir)
        self.registration = json.loads(result.stdout)
        config = os.path.join(self.dir, "codedeployagent.yml")
        text = open(config).read()
        text = text.replace("/etc/codedeploy-agent/conf/", self.dir + "/").replace("/opt/codedeploy-agent/deployment-root",
                                                                                  self.dir + "/root")
        open(config, "w").write(text)
        self.config = config
        self.process = None

    def start(self):
        self.log = open(os.path.join(self.dir, "agent.log"), "a")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
        self.process = subprocess.Popen([BINARY, "agent", "run", "--config", self.config, "--install-root", self.dir + "/fs"],
                                        stderr=self.log, env=env)

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)
        if self.process:
            self.log.close()

    def file(self, path):
        full = self.dir + "/fs" + path
        return open(full).read() if os.path.exists(full) else None


def make_app(directory, hooks, files=("index.html",), content="v1"):
    os.makedirs(os.path.join(directory, "scripts"), exist_ok=True)
    os.makedirs(os.path.join(directory, "site"), exist_ok=True)
    for name in files:
        open(os.path.join(directory, "site", name), "w").write(content + "\n")
    lines = ["version: 0.0", "os: linux", "files:", "  - source: site", "    destination: /srv/app", "hooks:"]
    for event, (script, body, timeout) in hooks.items():
        path = os.path.join(directory, "scripts", script)
        open(path, "w").write("#!/bin/bash\n" + body + "\n")
        os.chmod(path, 0o755)
        lines += [f"  {event}:", f"    - location: scripts/{script}", f"      timeout: {timeout}"]
    open(os.path.join(directory, "appspec.yml"), "w").write("\n".join(lines) + "\n")


def remote(server, *args, check=True):
    return deployctl(*args, "--endpoint-url", server.url, env=server.env("admin"), check=check)


def deploy(server, key, wait=True, timeout=120):
    args = ["create-deployment", "--application-name", "web", "--deployment-group-name", "fleet",
            "--s3-location", f"bucket=releases,key={key},bundleType=zip", "--output", "text"]
    deployment = remote(server, *args).stdout.strip()
    if wait:
        remote(server, "wait", "deployment-successful", "--deployment-id", deployment, "--timeout", str(timeout), check=False)
    return deployment


def status(server, deployment):
    return json.loads(remote(server, "get-deployment", "--deployment-id", deployment).stdout)["deploymentInfo"]["status"]


def events(server, deployment, host):
    out = remote(server, "get-deployment-instance", "--deployment-id", deployment, "--instance-id", host).stdout
    return {e["lifecycleEventName"]: e for e in json.loads(out)["instanceSummary"]["lifecycleEvents"]}


@pytest.fixture
def fleet():
    s = Server(extra_args=("--agent-grace", "3", "--poll-hold", "5"))
    hosts = []
    try:
        remote(s, "create-application", "--application-name", "web")
        remote(s, "create-deployment-group", "--application-name", "web", "--deployment-group-name", "fleet",
               "--on-premises-instance-tag-filters", "Key=fleet,Value=web,Type=KEY_AND_VALUE",
               "--deployment-config-name", "CodeDeployDefault.AllAtOnce")
        hosts = [Host(s, f"web-{i}") for i in range(1, 4)]
        yield s, hosts
    finally:
        for h in hosts:
            h.stop()
        assert s.stop() == 0
        subprocess.run(["rm", "-rf", s.directory])


def test_three_agents_deploy_in_under_a_second_and_report_a_failure(fleet):
    server, hosts = fleet
    for h in hosts:
        h.start()
    app = os.path.join(server.directory, "app")
    make_app(app, {"AfterInstall": ("check.sh", 'test -f /srv/app/index.html || test -n "$DEPLOYMENT_ID"', 30)})
    remote(server, "push", "--application-name", "web", "--s3-location", "s3://releases/v1.zip", "--source", app)
    time.sleep(0.5)  # the agents' first polls are held by the server
    started = time.monotonic()
    deployment = remote(server, "create-deployment", "--application-name", "web", "--deployment-group-name", "fleet",
                        "--s3-location", "bucket=releases,key=v1.zip,bundleType=zip", "--wait", "--timeout", "60").stdout
    elapsed = time.monotonic() - started
    deployment_id = json.loads(deployment)["deploymentId"]
    assert status(server, deployment_id) == "Succeeded"
    assert elapsed < 1.5, f"create-deployment --wait took {elapsed:.2f} s for three idle agents"
    for h in hosts:
        assert h.file("/srv/app/index.html") == "v1\n"
        assert all(e["status"] in ("Succeeded", "Skipped") for e in events(server, deployment_id, h.name).values())
    # A failing ValidateService: Failed, with the script's output in the diagnostics, as AWS shows it.
    make_app(app, {"ValidateService": ("validate.sh", 'echo "checking"; echo "service is down" >&2; exit 3', 30)}, content="v2")
    remote(server, "push", "--application-name", "web", "--s3-location", "s3://releases/v2.zip", "--source", app)
    failed = deploy(server, "v2.zip")
    assert status(server, failed) == "Failed"
    validate = events(server, failed, "web-1")["ValidateService"]
    assert validate["status"] == "Failed"
    assert validate["diagnostics"]["errorCode"] == "ScriptFailed"
    assert "service is down" in validate["diagnostics"]["logTail"]
    assert validate["diagnostics"]["scriptName"] == "scripts/validate.sh"


def test_a_killed_agent_reports_its_event_failed_when_it_comes_back(fleet):
    server, hosts = fleet
    host = hosts[0]
    for h in hosts:
        h.start()
    app = os.path.join(server.directory, "slow")
    make_app(app, {"AfterInstall": ("slow.sh", "sleep 6", 60)})
    remote(server, "push", "--application-name", "web", "--s3-location", "s3://releases/slow.zip", "--source", app)
    deployment = deploy(server, "slow.zip", wait=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if events(server, deployment, host.name).get("AfterInstall", {}).get("status") == "InProgress":
            break
        time.sleep(0.2)
    host.stop(signal.SIGKILL)
    host.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and events(server, deployment, host.name)["AfterInstall"]["status"] == "InProgress":
        time.sleep(0.2)
    after = events(server, deployment, host.name)["AfterInstall"]
    assert after["status"] == "Failed", after
    assert "restarted" in after["diagnostics"]["message"]
    # The restarted agent takes the next deployment.
    make_app(app, {"AfterInstall": ("ok.sh", "true", 30)}, content="v3")
    remote(server, "push", "--application-name", "web", "--s3-location", "s3://releases/v3.zip", "--source", app)
    remote(server, "stop-deployment", "--deployment-id", deployment, check=False)
    time.sleep(0.5)
    again = deploy(server, "v3.zip")
    assert status(server, again) == "Succeeded"
    assert host.file("/srv/app/index.html") == "v3\n"


def test_a_host_whose_agent_never_comes_back_is_failed_on_time(fleet):
    server, hosts = fleet
    host = hosts[0]
    host.start()
    app = os.path.join(server.directory, "hang")
    make_app(app, {"AfterInstall": ("hang.sh", "sleep 60", 2)})
    remote(server, "push", "--application-name", "web", "--s3-location", "s3://releases/hang.zip", "--source", app)
    deployment = deploy(server, "hang.zip", wait=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if events(server, deployment, host.name).get("AfterInstall", {}).get("status") == "InProgress":
            break
        time.sleep(0.2)
    killed = time.monotonic()
    host.stop(signal.SIGKILL)
    # Hook timeout 2 s + grace 3 s, on the server's own clock: nobody polls and nobody reads meanwhile.
    time.sleep(6.5)
    elapsed = time.monotonic() - killed
    after = events(server, deployment, host.name)["AfterInstall"]
    assert after["status"] == "Failed", (elapsed, after)
    assert "presumed gone" in after["diagnostics"]["message"]


def test_agent_list_and_the_wait_view_say_which_hosts_have_no_agent(fleet):
    server, hosts = fleet
    hosts[0].start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        agents = {a["instanceName"]: a for a in json.loads(remote(server, "agent", "list").stdout)["agents"]}
        if agents["web-1"]["status"] == "Online":
            break
        time.sleep(0.2)
    assert agents["web-1"]["status"] == "Online", agents
    assert agents["web-1"]["address"] == "127.0.0.1"
    assert agents["web-1"]["agent"].startswith("deployctl/")
    assert agents["web-2"] == {"instanceName": "web-2", "status": "Never"}
    # Any key but an instance's may ask; an unknown instance is named.
    read_only = deployctl("agent", "list", "--instance-names", "web-3", "--endpoint-url", server.url, env=server.env("read-only"))
    assert json.loads(read_only.stdout)["agents"] == [{"instanceName": "web-3", "status": "Never"}]
    unknown = deployctl("agent", "list", "--instance-names", "web-9", "--endpoint-url", server.url, env=server.env("read-only"),
                        check=False)
    assert unknown.returncode == 254 and "InstanceNotRegisteredException" in unknown.stderr and "web-9" in unknown.stderr
    # The --wait view: web-1 deploys, web-2 and web-3 wait for agents that were never there, and the view says so.
    app = os.path.join(server.directory, "app")
    make_app(app, {"AfterInstall": ("ok.sh", "true", 30)})
    remote(server, "push", "--application-name", "web", "--s3-location", "s3://releases/ok.zip", "--source", app)
    deployment = deploy(server, "ok.zip", wait=False)
    waited = remote(server, "wait", "deployment-successful", "--deployment-id", deployment, "--timeout", "9", check=False)
    assert waited.returncode != 0
    assert "no agent has ever polled for web-2" in waited.stderr, waited.stderr
    assert "no agent has ever polled for web-3" in waited.stderr
    assert "no agent has ever polled for web-1" not in waited.stderr
    # After it stops, the state file keeps when web-1 was last heard from (the server writes contacts every 5 s and
    # when it stops).
    hosts[0].stop()
    time.sleep(5.5)
    listed = json.loads(deployctl("agent", "list", "--instance-names", "web-1", "--state", server.state).stdout)["agents"][0]
    assert listed["status"] == "Online" and listed["address"] == "127.0.0.1", listed


def test_an_instance_key_acts_for_its_own_host_only(fleet):
    server, hosts = fleet
    own = hosts[0]
    identity = open(os.path.join(own.dir, "codedeploy.onpremises.yml")).read()
    key_id = identity.split("aws_access_key_id: ")[1].split()[0]
    secret = identity.split("aws_secret_access_key: ")[1].split()[0]
    env = server.env(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
    refused = deployctl("list-applications", "--endpoint-url", server.url, env=env, check=False)
    assert refused.returncode == 254 and "(AccessDeniedException)" in refused.stderr

    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    def command_call(operation, body, key=key_id, sec=secret):
        request = botocore.awsrequest.AWSRequest(
            method="POST", url=server.url + "/", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CodeDeployCommandService_v20141006." + operation})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, sec), "codedeploy-commands", "local").add_auth(request)
        return requests.post(server.url + "/", headers=dict(request.headers.items()), data=request.body, verify=server.ca, timeout=60)

    other_arn = hosts[1].registration["IamUserArn"]
    answer = command_call("PollHostCommand", {"HostIdentifier": other_arn})
    assert answer.status_code == 400 and answer.json()["__type"] == "AccessDeniedException"
    forged = command_call("PutHostCommandComplete", {"HostCommandIdentifier": "bm90IG91cnM=", "CommandStatus": "Succeeded"})
    assert forged.status_code == 400
    admin = server.keys["admin"]
    as_admin = command_call("PollHostCommand", {"HostIdentifier": own.registration["IamUserArn"]}, admin["AccessKeyId"], admin["SecretAccessKey"])
    assert as_admin.status_code == 400 and as_admin.json()["__type"] == "AccessDeniedException"
    # Its own poll is answered (nothing to do: after the hold, or at once on the -secure prefix with nothing queued).
    started = time.monotonic()
    own_poll = command_call("PollHostCommand", {"HostIdentifier": own.registration["IamUserArn"]})
    assert own_poll.status_code == 200 and own_poll.json().get("HostCommand") is None
    assert time.monotonic() - started >= 5, "an empty poll is held by the server"
    # deregister revokes the key.
    deployctl("deregister", "--state", server.state, "--instance-name", own.name)
    time.sleep(2.5)
    gone = command_call("PollHostCommand", {"HostIdentifier": own.registration["IamUserArn"]})
    assert gone.json()["__type"] == "UnrecognizedClientException"


def test_install_puts_the_files_where_aws_agent_keeps_them_and_uninstall_removes_them(tmp_path):
    s = Server()
    try:
        folder = str(tmp_path / "web-9")
        deployctl("register", "--state", s.state, "--instance-name", "web-9", "--endpoint-url", s.url, "--output-dir", folder)
        prefix = str(tmp_path / "root")
        out = deployctl("install", "--config-file", folder + "/codedeploy.onpremises.yml", "--prefix", prefix).stdout
        conf = prefix + "/etc/codedeploy-agent/conf"
        assert oct(os.stat(conf + "/codedeploy.onpremises.yml").st_mode & 0o777) == "0o600"
        assert "aws_secret_access_key:" in open(conf + "/codedeploy.onpremises.yml").read()
        assert ":deploy_control_endpoint: " + s.url in open(conf + "/codedeployagent.yml").read()
        assert open(conf + "/deployctl-ca.pem").read() == open(s.ca).read()
        assert open(prefix + "/usr/local/share/ca-certificates/deployctl-ca.crt").read() == open(s.ca).read()
        unit = open(prefix + "/etc/systemd/system/deployctl-agent.service").read()
        assert "agent run --config /etc/codedeploy-agent/conf/codedeployagent.yml" in unit
        assert "installed" in out
        bad = deployctl("install", "--config-file", folder + "/codedeployagent.yml", "--prefix", prefix, check=False)
        assert bad.returncode == 252 and "not a codedeploy.onpremises.yml" in bad.stderr
        deployctl("uninstall", "--prefix", prefix)
        assert not os.path.exists(conf + "/codedeploy.onpremises.yml")
        assert not os.path.exists(prefix + "/etc/systemd/system/deployctl-agent.service")
    finally:
        assert s.stop() == 0
        subprocess.run(["rm", "-rf", s.directory])


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_result_the_server_could_not_take_is_reported_after_a_restart(tmp_path, stop):
    """The server goes down while a hook runs and the agent is killed, or asked to stop, before it can report: the
    result waits on disk and the restarted agent reports it (the event Succeeded, not 'the agent restarted'). Asked
    to stop, the agent tries for a few seconds more, then exits rather than retrying for the hour it would while
    running."""
    import socket
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    s = Server(extra_args=("--listen", f"127.0.0.1:{port}", "--agent-grace", "30", "--poll-hold", "5"))
    host = None
    second = None
    try:
        assert s.port == port
        remote(s, "create-application", "--application-name", "web")
        remote(s, "create-deployment-group", "--application-name", "web", "--deployment-group-name", "fleet",
               "--on-premises-instance-tag-filters", "Key=fleet,Value=web,Type=KEY_AND_VALUE")
        host = Host(s, "web-1")
        host.start()
        app = str(tmp_path / "app")
        make_app(app, {"AfterInstall": ("slow.sh", "sleep 3", 30)})
        remote(s, "push", "--application-name", "web", "--s3-location", "s3://releases/slow.zip", "--source", app)
        deployment = deploy(s, "slow.zip", wait=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and events(s, deployment, "web-1").get("AfterInstall", {}).get("status") != "InProgress":
            time.sleep(0.2)
        s.process.send_signal(signal.SIGTERM)
        s.process.wait(timeout=30)
        time.sleep(5)  # the hook ends; the report cannot be delivered
        asked = time.monotonic()
        host.stop(stop)
        if stop == signal.SIGTERM:
            assert time.monotonic() - asked < 25
            assert host.process.returncode == 0
            log = open(os.path.join(host.dir, "agent.log")).read()
            assert "stays on disk and is reported when the agent next starts" in log, log
        ongoing = os.path.join(host.dir, "root", "ongoing-deployment")
        markers = os.listdir(ongoing)
        assert len(markers) == 1
        lines = open(os.path.join(ongoing, markers[0])).read().splitlines()
        assert lines[0] == "AfterInstall" and '"status":"Succeeded"' in lines[2], lines
        second = subprocess.Popen([BINARY, "server", "--state", s.state, "--listen", f"127.0.0.1:{port}", "--poll-hold", "5"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert "serving" in second.stdout.readline()
        host.start()
        remote(s, "wait", "deployment-successful", "--deployment-id", deployment, "--timeout", "60", check=False)
        after = events(s, deployment, "web-1")["AfterInstall"]
        assert after["status"] == "Succeeded", after
        assert status(s, deployment) == "Succeeded"
        assert os.listdir(ongoing) == []
    finally:
        if host:
            host.stop()
        if second:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        if s.process.poll() is None:
            s.stop()
        subprocess.run(["rm", "-rf", s.directory])
