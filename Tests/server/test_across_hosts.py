"""Across hosts: `deployctl server` in one network namespace, three hosts in three others, joined by veth pairs on a
bridge in a fifth (so nothing touches the machine's own network). Agents reach the server only over its TLS
address. Deployments pushed with --endpoint-url under OneAtATime and AllAtOnce, a host failing with an automatic
rollback, an agent killed and restarted, and a host whose agent never comes back."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import BINARY, deployctl

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (ip netns) to build the test network")


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


class Network:
    """Namespaces `<prefix>-sw` (the bridge), `<prefix>-srv` (10.77.0.1) and one per host (10.77.0.1N)."""

    def __init__(self, hosts):
        self.prefix = f"dctl{os.getpid() % 100000}"
        self.namespaces = []
        switch = self.add("sw")
        sh("ip", "netns", "exec", switch, "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", switch, "ip", "link", "set", "br0", "up")
        self.server = self.attach("srv", "10.77.0.1")
        self.hosts = {name: self.attach(name, f"10.77.0.{11 + i}") for i, name in enumerate(hosts)}

    def add(self, suffix):
        name = f"{self.prefix}-{suffix}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        return name

    def attach(self, suffix, address):
        namespace = self.add(suffix)
        inside, outside = f"v{suffix}"[:15], f"{self.prefix[-6:]}{suffix}"[:15]
        sh("ip", "link", "add", inside, "netns", namespace, "type", "veth", "peer", "name", outside, "netns", f"{self.prefix}-sw")
        sh("ip", "netns", "exec", namespace, "ip", "addr", "add", f"{address}/24", "dev", inside)
        sh("ip", "netns", "exec", namespace, "ip", "link", "set", inside, "up")
        sh("ip", "netns", "exec", f"{self.prefix}-sw", "ip", "link", "set", outside, "master", "br0")
        sh("ip", "netns", "exec", f"{self.prefix}-sw", "ip", "link", "set", outside, "up")
        return namespace

    def close(self):
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def cluster():
    names = ["web-1", "web-2", "web-3"]
    try:
        network = Network(names)
    except subprocess.CalledProcessError as error:
        pytest.skip(f"cannot create network namespaces here: {error.stderr.decode().strip()}")
    directory = tempfile.mkdtemp(prefix="deployctl-hosts-")
    state = os.path.join(directory, "state.db")
    admin = json.loads(deployctl("create-access-key", "--state", state, "--user-name", "ops", "--role", "admin").stdout)["AccessKey"]
    log = open(os.path.join(directory, "server.log"), "w")
    server = subprocess.Popen(["ip", "netns", "exec", network.server, BINARY, "server", "--state", state, "--listen", "10.77.0.1:8443",
                               "--agent-grace", "3", "--poll-hold", "5"], stdout=subprocess.PIPE, stderr=log, text=True)
    line = server.stdout.readline()
    assert "serving https://10.77.0.1:8443" in line, line
    url = "https://10.77.0.1:8443"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
    env.update({"AWS_ACCESS_KEY_ID": admin["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": admin["SecretAccessKey"],
                "AWS_CA_BUNDLE": os.path.join(directory, "tls", "ca.pem"), "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull})

    def operator(*args, check=True):
        """A deployctl command from the server's namespace, through its TLS address."""
        result = subprocess.run(["ip", "netns", "exec", network.server, BINARY, *args, "--endpoint-url", url],
                                capture_output=True, text=True, env=env, timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(f"deployctl {' '.join(args)}: {result.stderr}")
        return result

    agents = {}
    hosts = {}
    for name in names:
        folder = os.path.join(directory, name)
        deployctl("register", "--state", state, "--instance-name", name, "--tags", "Key=env,Value=prod", "--endpoint-url", url,
                  "--output-dir", folder)
        config = os.path.join(folder, "codedeployagent.yml")
        text = open(config).read().replace("/etc/codedeploy-agent/conf/", folder + "/").replace(
            "/opt/codedeploy-agent/deployment-root", folder + "/root")
        open(config, "w").write(text)
        hosts[name] = folder

    def start(name):
        folder = hosts[name]
        agents[name] = subprocess.Popen(
            ["ip", "netns", "exec", network.hosts[name], BINARY, "agent", "run", "--config", os.path.join(folder, "codedeployagent.yml"),
             "--install-root", os.path.join(folder, "fs")],
            stderr=open(os.path.join(folder, "agent.log"), "a"), env={k: v for k, v in env.items() if not k.startswith("AWS_")})

    def kill(name, sig=signal.SIGKILL):
        process = agents.pop(name)
        process.send_signal(sig)
        process.wait(timeout=60)

    def version(name):
        path = os.path.join(hosts[name], "fs", "srv", "app", "version")
        return open(path).read().strip() if os.path.exists(path) else None

    class Cluster:
        pass

    c = Cluster()
    c.network, c.directory, c.url, c.operator, c.start, c.kill, c.version, c.hosts, c.names = (
        network, directory, url, operator, start, kill, version, hosts, names)
    try:
        yield c
    finally:
        for name in list(agents):
            kill(name, signal.SIGTERM)
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
        log.close()
        network.close()
        shutil.rmtree(directory, ignore_errors=True)
        assert code == 0


def make_revision(folder, version, fail_on=None, sleep_on=None):
    os.makedirs(os.path.join(folder, "site"), exist_ok=True)
    os.makedirs(os.path.join(folder, "scripts"), exist_ok=True)
    open(os.path.join(folder, "site", "version"), "w").write(version + "\n")
    validate = "#!/bin/bash\nset -e\n"
    validate += 'grep -qx "' + version + '" /srv/app/version 2>/dev/null || test -n "$DEPLOYMENT_ID"\n'
    if fail_on:
        validate += f'if [ "$DEPLOYCTL_INSTANCE_NAME" = "{fail_on}" ]; then echo "{fail_on} is unhealthy" >&2; exit 4; fi\n'
    if sleep_on:
        validate += f'if [ "$DEPLOYCTL_INSTANCE_NAME" = "{sleep_on}" ]; then sleep 120; fi\n'
    path = os.path.join(folder, "scripts", "validate.sh")
    open(path, "w").write(validate)
    os.chmod(path, 0o755)
    open(os.path.join(folder, "appspec.yml"), "w").write(
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/app\n"
        "hooks:\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 3\n")


def test_deployments_across_network_namespaces(cluster):
    c = cluster
    op = c.operator
    op("create-application", "--application-name", "shop")
    op("create-deployment-group", "--application-name", "shop", "--deployment-group-name", "prod",
       "--on-premises-instance-tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE",
       "--deployment-config-name", "CodeDeployDefault.OneAtATime",
       "--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE")
    for name in c.names:
        c.start(name)
    revision = os.path.join(c.directory, "revision")

    def push_and_deploy(version, config, **kwargs):
        make_revision(revision, version, **kwargs)
        op("push", "--application-name", "shop", "--s3-location", f"s3://releases/shop-{version}.zip", "--source", revision)
        out = op("create-deployment", "--application-name", "shop", "--deployment-group-name", "prod",
                 "--deployment-config-name", config, "--s3-location", f"bucket=releases,key=shop-{version}.zip,bundleType=zip",
                 "--output", "text").stdout.strip()
        op("wait", "deployment-successful", "--deployment-id", out, "--timeout", "120", check=False)
        return out

    def info(deployment):
        return json.loads(op("get-deployment", "--deployment-id", deployment).stdout)["deploymentInfo"]

    def target_status(deployment, name):
        out = op("get-deployment-target", "--deployment-id", deployment, "--target-id", name).stdout
        return json.loads(out)["deploymentTarget"]["instanceTarget"]["status"]

    # OneAtATime, then AllAtOnce: every host gets every file.
    first = push_and_deploy("v1", "CodeDeployDefault.OneAtATime")
    assert info(first)["status"] == "Succeeded"
    assert [c.version(n) for n in c.names] == ["v1"] * 3
    second = push_and_deploy("v2", "CodeDeployDefault.AllAtOnce")
    assert info(second)["status"] == "Succeeded"
    assert [c.version(n) for n in c.names] == ["v2"] * 3

    # One host failing under OneAtATime: the deployment fails and is rolled back to v2 everywhere.
    third = push_and_deploy("v3", "CodeDeployDefault.OneAtATime", fail_on="web-1")
    failed = info(third)
    assert failed["status"] == "Failed"
    rollback = failed.get("rollbackInfo", {}).get("rollbackDeploymentId")
    assert rollback, failed
    op("wait", "deployment-successful", "--deployment-id", rollback, "--timeout", "120", check=False)
    assert info(rollback)["status"] == "Succeeded"
    assert [c.version(n) for n in c.names] == ["v2"] * 3

    # An agent killed and restarted takes the next deployment.
    c.kill("web-2")
    c.start("web-2")
    fourth = push_and_deploy("v4", "CodeDeployDefault.AllAtOnce")
    assert info(fourth)["status"] == "Succeeded"
    assert [c.version(n) for n in c.names] == ["v4"] * 3, op("get-deployment-instance", "--deployment-id", fourth, "--instance-id", "web-2").stdout

    # A host whose agent dies mid-event and never comes back: the server fails it on time, the rest succeed.
    make_revision(revision, "v5", sleep_on="web-3")
    op("push", "--application-name", "shop", "--s3-location", "s3://releases/shop-v5.zip", "--source", revision)
    fifth = op("create-deployment", "--application-name", "shop", "--deployment-group-name", "prod",
               "--deployment-config-name", "CodeDeployDefault.AllAtOnce", "--s3-location", "bucket=releases,key=shop-v5.zip,bundleType=zip",
               "--output", "text").stdout.strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and target_status(fifth, "web-3") != "InProgress":
        time.sleep(0.2)
    while time.monotonic() < deadline:
        events = json.loads(op("get-deployment-instance", "--deployment-id", fifth, "--instance-id", "web-3").stdout)
        if any(e["lifecycleEventName"] == "ValidateService" and e["status"] == "InProgress" for e in events["instanceSummary"]["lifecycleEvents"]):
            break
        time.sleep(0.2)
    c.kill("web-3")
    op("wait", "deployment-successful", "--deployment-id", fifth, "--timeout", "60", check=False)
    final = info(fifth)
    assert final["status"] == "Succeeded", final
    statuses = [target_status(fifth, n) for n in c.names]
    detail = {n: op("get-deployment-instance", "--deployment-id", fifth, "--instance-id", n).stdout for n in c.names}
    assert statuses == ["Succeeded", "Succeeded", "Failed"], (statuses, [json.loads(detail[n])["instanceSummary"]["lifecycleEvents"] for n in c.names if json.loads(detail[n])["instanceSummary"]["status"] == "Failed"])
    assert [c.version(n) for n in c.names] == ["v5", "v5", "v5"]
