"""Issue 26: what must hold when two or three `deployctl server` replicas serve one real PostgreSQL database. Each
test starts its replicas (and, for failover, HAProxy from Debian in TCP mode) on loopback, and checks the database
afterwards."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests

from conftest import BINARY, deployctl

COMMAND_TARGET = "CodeDeployCommandService_v20141006."


def remote(replica, *args, role="admin", check=True):
    return deployctl(*args, "--endpoint-url", replica.url, env=replica.env(role), check=check)


def call(replica, key, operation, body, timeout=60):
    """One signed call of the agents' command protocol against `replica`."""
    text = json.dumps(body)
    credentials = botocore.credentials.Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=replica.url + "/", data=text,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": COMMAND_TARGET + operation})
    botocore.auth.SigV4Auth(credentials, "codedeploy-commands", "us-east-1").add_auth(request)
    response = requests.post(replica.url + "/", headers=dict(request.headers.items()), data=text, verify=replica.ca, timeout=timeout)
    return response.status_code, response.json() if response.content else {}


def make_app(directory, hook_body="true", content="v1", timeout=120):
    os.makedirs(os.path.join(directory, "scripts"), exist_ok=True)
    os.makedirs(os.path.join(directory, "site"), exist_ok=True)
    open(os.path.join(directory, "site", "index.html"), "w").write(content + "\n")
    script = os.path.join(directory, "scripts", "hook.sh")
    open(script, "w").write("#!/bin/bash\n" + hook_body + "\n")
    os.chmod(script, 0o755)
    open(os.path.join(directory, "appspec.yml"), "w").write(
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/app\nhooks:\n"
        f"  AfterInstall:\n    - location: scripts/hook.sh\n      timeout: {timeout}\n")


def register(shared, name, endpoint):
    """`deployctl register --database`: the instance, its tags and its key in one transaction; its files in a folder."""
    folder = os.path.join(shared.directory, "hosts", name)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    out = deployctl("register", "--database", shared.url, "--tls-dir", shared.tls, "--instance-name", name, "--tags",
                    "Key=fleet,Value=web", "--endpoint-url", endpoint, "--output-dir", folder).stdout
    registration = json.loads(out)
    conf = open(os.path.join(folder, "codedeploy.onpremises.yml")).read()
    secret = next(line.split(": ", 1)[1] for line in conf.splitlines() if line.startswith("aws_secret_access_key"))
    return {"name": name, "folder": folder, "AccessKeyId": registration["AccessKeyId"], "SecretAccessKey": secret,
            "arn": registration["IamUserArn"]}


def prepare(replica, shared, hook_body="true", config="CodeDeployDefault.AllAtOnce", timeout=120):
    remote(replica, "create-application", "--application-name", "web")
    remote(replica, "create-deployment-group", "--application-name", "web", "--deployment-group-name", "fleet",
           "--on-premises-instance-tag-filters", "Key=fleet,Value=web,Type=KEY_AND_VALUE", "--deployment-config-name", config)
    app = os.path.join(shared.directory, "app")
    make_app(app, hook_body, timeout=timeout)
    remote(replica, "push", "--application-name", "web", "--s3-location", "s3://releases/v1.zip", "--source", app)


def create_deployment(replica, check=True):
    return remote(replica, "create-deployment", "--application-name", "web", "--deployment-group-name", "fleet",
                  "--s3-location", "bucket=releases,key=v1.zip,bundleType=zip", "--output", "text", check=check)


def deployment_status(replica, deployment):
    return json.loads(remote(replica, "get-deployment", "--deployment-id", deployment).stdout)["deploymentInfo"]["status"]


class Agent:
    """deployctl's agent on a registered host, talking to the endpoint its registration names."""

    def __init__(self, host):
        self.host = host
        config = os.path.join(host["folder"], "codedeployagent.yml")
        text = open(config).read().replace("/etc/codedeploy-agent/conf/", host["folder"] + "/")
        open(config, "w").write(text.replace("/opt/codedeploy-agent/deployment-root", host["folder"] + "/root"))
        self.log = open(os.path.join(host["folder"], "agent.log"), "a")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
        self.process = subprocess.Popen([BINARY, "agent", "run", "--config", config, "--install-root", host["folder"] + "/fs"],
                                        stderr=self.log, env=env)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self.log.close()

    def file(self, path):
        full = self.host["folder"] + "/fs" + path
        return open(full).read() if os.path.exists(full) else None


def wait_for(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def test_three_replicas_starting_at_once_migrate_the_schema_once(shared):
    first = shared.replica()  # makes the shared CA; the others start together on an already-migrated database
    shared.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    starting = [shared.replica(start=False) for _ in range(3)]
    for replica in starting:
        replica.wait_started()
    assert shared.sql("SELECT version FROM deployctl_schema") == "2"
    assert shared.sql("SELECT COUNT(*) FROM deployctl_schema") == "1"
    # The keys went with the dropped schema: a new one through the database, then every replica answers with it.
    out = deployctl("create-access-key", "--database", shared.url, "--user-name", "again", "--role", "admin").stdout
    shared.keys["admin"] = json.loads(out)["AccessKey"]
    remote(starting[0], "create-application", "--application-name", "web")
    for replica in [first, *starting]:
        assert json.loads(remote(replica, "list-applications").stdout)["applications"] == ["web"]


def test_each_host_command_is_handed_out_once_however_many_replicas_poll_at_once(shared):
    replicas = [shared.replica(("--poll-hold", "1")) for _ in range(3)]
    host = register(shared, "web-1", replicas[0].url)
    prepare(replicas[0], shared)
    deployment = create_deployment(replicas[1]).stdout.strip()
    events = []
    for round_number in range(4):
        barrier = threading.Barrier(12)
        answers = []

        def poll(replica):
            barrier.wait()
            status, answer = call(replica, host, "PollHostCommand", {"HostIdentifier": host["arn"]})
            answers.append((status, answer))

        threads = [threading.Thread(target=poll, args=(replicas[i % 3],)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(status == 200 for status, _ in answers), answers
        handed = [answer["HostCommand"] for _, answer in answers if answer.get("HostCommand")]
        assert len(handed) == 1, f"round {round_number}: {len(handed)} of 12 concurrent polls got a command: {handed}"
        command = handed[0]
        events.append(command["CommandName"])
        # Acknowledge and complete it through yet another replica; the next round polls for the next command.
        other = replicas[(round_number + 1) % 3]
        status, _ = call(other, host, "PutHostCommandAcknowledgement",
                         {"HostCommandIdentifier": command["HostCommandIdentifier"], "Diagnostics": None})
        assert status == 200
        status, _ = call(other, host, "PutHostCommandComplete",
                         {"HostCommandIdentifier": command["HostCommandIdentifier"], "CommandStatus": "Succeeded",
                          "Diagnostics": {"format": "JSON", "payload": json.dumps({"error_code": 0, "script_name": "",
                                                                                    "message": "ok", "log": ""})}})
        assert status == 200
    assert len(set(events)) == 4, f"each round handed out the next event: {events}"
    assert deployment_status(replicas[2], deployment) == "InProgress"
    assert shared.sql("SELECT COUNT(*) FROM host_commands") == "0"


def test_one_active_deployment_per_group_when_two_replicas_create_at_the_same_instant(shared):
    a, b = shared.replica(), shared.replica()
    register(shared, "web-1", a.url)
    prepare(a, shared)
    for round_number in range(5):
        barrier = threading.Barrier(4)
        results = []

        def create(replica):
            barrier.wait()
            results.append(create_deployment(replica, check=False))

        threads = [threading.Thread(target=create, args=(replica,)) for replica in (a, b, a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        created = [r.stdout.strip() for r in results if r.returncode == 0]
        refused = [r.stderr for r in results if r.returncode != 0]
        assert len(created) == 1, f"round {round_number}: {len(created)} deployments created at once: {created} {refused}"
        assert all("DeploymentLimitExceededException" in e for e in refused), refused
        active = shared.sql("SELECT COUNT(*) FROM deployments WHERE status IN ('Created', 'Queued', 'InProgress', 'Baking', 'Ready')")
        assert active == "1"
        remote(b, "stop-deployment", "--deployment-id", created[0])
        assert wait_for(lambda: deployment_status(a, created[0]) == "Stopped", 10)


def test_a_poll_held_by_one_replica_is_woken_by_a_deployment_created_on_another(shared):
    a, b = shared.replica(("--poll-hold", "40")), shared.replica(("--poll-hold", "40"))
    host = register(shared, "web-1", a.url)
    prepare(b, shared)
    agent = Agent(host)
    try:
        time.sleep(2)  # the agent's poll is now held by replica A, for up to 40 s
        started = time.monotonic()
        deployment = create_deployment(b).stdout.strip()
        assert wait_for(lambda: deployment_status(b, deployment) == "Succeeded", 30)
        elapsed = time.monotonic() - started
        # Woken through LISTEN/NOTIFY (within a second), not at the end of its 40 s hold; each event is then
        # reported through A, which hears nothing more from B.
        assert elapsed < 8, f"the deployment took {elapsed:.1f} s: the held poll was not woken"
        assert agent.file("/srv/app/index.html") == "v1\n"
    finally:
        agent.stop()


HAPROXY_CONFIG = """
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 120s
    timeout server 120s
frontend deployctl
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
{servers}
"""


class Balancer:
    """HAProxy from Debian in TCP mode (TLS passes through to the replicas), on loopback, stopped by its PID."""

    def __init__(self, directory, replicas):
        if not shutil.which("haproxy"):
            raise AssertionError("haproxy is not installed (apt-get install haproxy); .ci/run installs it")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        servers = "\n".join(f"    server r{i} 127.0.0.1:{r.port} check inter 300ms fall 1 rise 2" for i, r in enumerate(replicas))
        self.config = os.path.join(directory, "haproxy.cfg")
        open(self.config, "w").write(HAPROXY_CONFIG.format(port=self.port, servers=servers))
        self.process = subprocess.Popen(["haproxy", "-db", "-f", self.config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: self._open(), 10), "haproxy did not start"
        self.url = f"https://127.0.0.1:{self.port}"

    def _open(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=10)


def test_kill_9_of_a_replica_mid_deployment_and_the_agents_finish_through_the_other(shared):
    a = shared.replica(("--poll-hold", "5", "--agent-grace", "60"))
    b = shared.replica(("--poll-hold", "5", "--agent-grace", "60"))
    balancer = Balancer(shared.directory, [a, b])
    agents = []
    try:
        hosts = [register(shared, f"web-{i}", balancer.url) for i in range(1, 4)]
        # Each AfterInstall hook takes 3 s: replica A dies while the agents run it.
        prepare(b, shared, hook_body="sleep 3")
        agents = [Agent(h) for h in hosts]
        time.sleep(1)
        deployment = create_deployment(b).stdout.strip()
        assert wait_for(lambda: shared.sql(
            f"SELECT COUNT(*) FROM host_commands WHERE deployment_id = '{deployment}' AND event_name = 'AfterInstall'") == "3", 20)
        a.kill9()
        assert wait_for(lambda: deployment_status(b, deployment) in ("Succeeded", "Failed"), 90, interval=0.5)
        assert deployment_status(b, deployment) == "Succeeded", b.log()[-2000:]
        for agent in agents:
            assert agent.file("/srv/app/index.html") == "v1\n"
        # Every lifecycle event of every instance ran once and succeeded: nothing lost, nothing done twice.
        for host in hosts:
            out = remote(b, "get-deployment-instance", "--deployment-id", deployment, "--instance-id", host["name"]).stdout
            statuses = {e["lifecycleEventName"]: e["status"] for e in json.loads(out)["instanceSummary"]["lifecycleEvents"]}
            assert statuses["AfterInstall"] == "Succeeded", statuses
            assert all(s in ("Succeeded", "Skipped") for s in statuses.values()), statuses
    finally:
        for agent in agents:
            agent.stop()
        balancer.stop()


def test_postgresql_restarted_under_load_loses_nothing_and_the_replicas_reconnect(shared):
    a, b = shared.replica(("--poll-hold", "5")), shared.replica(("--poll-hold", "5"))
    hosts = [register(shared, f"web-{i}", a.url if i % 2 else b.url) for i in range(1, 3)]
    prepare(a, shared, hook_body="sleep 2")
    agents = [Agent(h) for h in hosts]
    stop = threading.Event()
    outcomes = {"ok": 0, "unavailable": 0, "other": []}
    created = []

    def load(replica):
        client = replica.client()
        number = 0
        while not stop.is_set():
            number += 1
            try:
                client.create_application(applicationName=f"{replica.port}-{number}")
                created.append(f"{replica.port}-{number}")
                outcomes["ok"] += 1
            except client.exceptions.ClientError as error:
                code = error.response["Error"]["Code"]
                if code == "ServiceUnavailable":
                    outcomes["unavailable"] += 1
                else:
                    outcomes["other"].append(code)
            except Exception as error:  # a connection reset by the server is a retryable outcome too
                outcomes["other"].append(repr(error))

    try:
        time.sleep(1)
        deployment = create_deployment(b).stdout.strip()
        workers = [threading.Thread(target=load, args=(r,)) for r in (a, b)]
        for worker in workers:
            worker.start()
        time.sleep(1)
        shared.cluster.restart()
        time.sleep(3)
        stop.set()
        for worker in workers:
            worker.join()
        assert outcomes["other"] == [], outcomes["other"][:5]
        assert outcomes["ok"] > 20
        # Every create-application that answered 200 is there, and none that did not.
        names = set(shared.sql("SELECT name FROM applications").split("\n"))
        assert set(created) <= names
        assert wait_for(lambda: deployment_status(a, deployment) in ("Succeeded", "Failed"), 60, interval=0.5)
        assert deployment_status(a, deployment) == "Succeeded", a.log()[-2000:]
        metrics = requests.get(a.url + "/metrics", verify=a.ca, timeout=10,
                               headers={"Authorization": f"Bearer {shared.keys['admin']['AccessKeyId']}:{shared.keys['admin']['SecretAccessKey']}"}).text
        assert "deployctl_store_up 1" in metrics
        reconnects = [line for line in metrics.splitlines() if line.startswith("deployctl_store_listener_reconnects")]
        assert reconnects and float(reconnects[0].split()[-1]) >= 1, reconnects
    finally:
        stop.set()
        for agent in agents:
            agent.stop()


def test_an_expired_command_is_failed_exactly_once_by_three_replicas_clocks(shared):
    replicas = [shared.replica(("--agent-grace", "3", "--poll-hold", "2")) for _ in range(3)]
    host = register(shared, "web-1", replicas[0].url)
    # The hook outlives its 2 s timeout; the agent is killed while it runs, so only the servers' clocks can end it.
    prepare(replicas[1], shared, hook_body="sleep 60", timeout=2)
    agent = Agent(host)
    try:
        deployment = create_deployment(replicas[2]).stdout.strip()
        assert wait_for(lambda: shared.sql(
            f"SELECT COUNT(*) FROM host_commands WHERE deployment_id = '{deployment}' AND event_name = 'AfterInstall' AND acknowledged = 1")
            == "1", 30)
        agent.process.send_signal(signal.SIGKILL)
        agent.process.wait()
        # Hook timeout 2 s + grace 3 s, then every replica's clock looks once a second.
        assert wait_for(lambda: deployment_status(replicas[0], deployment) == "Failed", 20, interval=0.5)
        out = remote(replicas[0], "get-deployment-instance", "--deployment-id", deployment, "--instance-id", "web-1").stdout
        after_install = {e["lifecycleEventName"]: e for e in json.loads(out)["instanceSummary"]["lifecycleEvents"]}["AfterInstall"]
        assert after_install["status"] == "Failed"
        assert "presumed gone" in after_install["diagnostics"]["message"]
        time.sleep(3)  # every replica's clock has had its turns since
        bodies = shared.sql(
            f"SELECT body FROM events WHERE deployment_id = '{deployment}' AND body LIKE '%\"lifecycleEvent\":\"AfterInstall\"%'"
            " AND body LIKE '%\"state\":\"FAILURE\"%'")
        failures = [line for line in bodies.split("\n") if line]
        assert len(failures) == 1, f"the expired command was failed {len(failures)} times: {failures}"
        assert shared.sql(f"SELECT COUNT(*) FROM host_commands WHERE deployment_id = '{deployment}'") == "0"
    finally:
        agent.stop()


def test_reads_never_wait_for_a_writer_holding_the_write_lock(shared):
    replica = shared.replica()
    remote(replica, "create-application", "--application-name", "web")
    # Another session holds the write lock every replica's writes take (as a long write transaction would).
    holder = subprocess.Popen(
        [f"{shared.cluster.bin}/psql", "-h", shared.cluster.directory, "-U", "postgres", "-XAtq", "-c",
         "BEGIN; SELECT pg_advisory_xact_lock(x'64637772697465'::bigint); SELECT pg_sleep(3); COMMIT;", shared.database],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        client = replica.client()
        started = time.monotonic()
        for _ in range(20):
            assert client.get_application(applicationName="web")["application"]["applicationName"] == "web"
            assert client.list_applications()["applications"] == ["web"]
        reads = time.monotonic() - started
        assert reads < 1.5, f"40 reads took {reads:.2f} s while the write lock was held"
        started = time.monotonic()
        client.create_application(applicationName="later")
        waited = time.monotonic() - started
        assert waited > 1.0, f"a write did not wait for the lock ({waited:.2f} s)"
    finally:
        holder.wait(timeout=10)
