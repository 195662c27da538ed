"""Zero-downtime deployments behind a real HAProxy (issue 25): `deployctl server --load-balancer` drains each
instance's server in BlockTraffic and re-admits it in AllowTraffic only once HAProxy's health checks pass, while a
load generator sends requests through HAProxy for the whole deployment.

One HAProxy (Debian's package, started here on loopback, its runtime API on a Unix socket in a temporary directory,
stopped by its PID), one server and three agents (each its own install root and its own service port) for the module.
"""
import contextlib
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

_support_spec = importlib.util.spec_from_file_location(
    "e2e_support", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e_support.py"))
_support = importlib.util.module_from_spec(_support_spec)
_support_spec.loader.exec_module(_support)
_server = _support.server_conftest()
BINARY, Server, deployctl = _server.BINARY, _server.Server, _server.deployctl

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
HOSTS = ("web-1", "web-2", "web-3")
# The blue/green test's second fleet: servers of the same backend, in maintenance until a deployment admits them.
GREEN_HOSTS = ("green-1", "green-2", "green-3")
# Instances of the state-file test: their own backend and frontend in the same HAProxy.
LOCAL_HOSTS = ("local-1", "local-2")

# The service the revision installs: /health for HAProxy's checks, / answers the installed version. A version whose
# name starts with "sick" fails its health checks (but its ValidateService passes).
SERVICE = r'''
import http.server, os, sys
root = os.path.dirname(os.path.abspath(__file__))
version = open(os.path.join(root, "version")).read().strip()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health" and version.startswith("sick"):
            code, body = 500, b"sick\n"
        elif self.path == "/who":
            code, body = 200, f"{version} {self.server.server_address[1]}\n".encode()
        else:
            code, body = 200, (version + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''

START = _support.start_script("srv/app", delay=0.5)
STOP = _support.STOP

HOOK_LOG = """#!/bin/sh
echo "$LIFECYCLE_EVENT" >> "$DEPLOYCTL_INSTALL_ROOT/hooks.log"
"""


free_port = _support.free_port


def make_revision(folder, version):
    os.makedirs(folder + "/app", exist_ok=True)
    os.makedirs(folder + "/scripts", exist_ok=True)
    open(folder + "/app/server.py", "w").write(SERVICE)
    open(folder + "/app/version", "w").write(version + "\n")
    for name, body in (("start.sh", START), ("stop.sh", STOP), ("hook.sh", HOOK_LOG)):
        open(f"{folder}/scripts/{name}", "w").write(body)
        os.chmod(f"{folder}/scripts/{name}", 0o755)
    hooks = {"ApplicationStop": "stop.sh", "ApplicationStart": "start.sh"}
    for event in ("BeforeBlockTraffic", "AfterBlockTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"):
        hooks[event] = "hook.sh"
    lines = ["version: 0.0", "os: linux", "files:", "  - source: app", "    destination: /srv/app", "hooks:"]
    for event, script in hooks.items():
        lines += [f"  {event}:", f"    - location: scripts/{script}", "      timeout: 30"]
    open(folder + "/appspec.yml", "w").write("\n".join(lines) + "\n")


class HAProxy:
    """HAProxy in front of the three instances' ports, checking /health every 100 ms (rise 2, fall 2)."""

    def __init__(self, directory, backends, disabled=()):
        self.directory = directory
        self.socket = os.path.join(directory, "admin.sock")
        self.ports = {name: free_port() for name in backends}
        # A second runtime API on TCP: the state-file test gives it as the other node of an "HA pair".
        self.runtime_port = free_port()
        self.port = self.ports["web"]
        proxies = ""
        for backend, servers in backends.items():
            lines = "\n".join(f"  server {name} 127.0.0.1:{port}{' disabled' if name in disabled else ''}"
                              for name, port in servers.items())
            proxies += f"""frontend {backend}
  bind 127.0.0.1:{self.ports[backend]}
  default_backend {backend}
backend {backend}
  balance roundrobin
  option httpchk GET /health
  default-server check inter 100ms rise 2 fall 2
{lines}
"""
        config = f"""global
  stats socket {self.socket} mode 600 level admin
  stats socket ipv4@127.0.0.1:{self.runtime_port} level admin
  stats timeout 10s
defaults
  mode http
  # HAProxy retries a refused connection 3 times after min(timeout connect, 1 s) each: short here, so a service
  # that is down longer than that loses requests without traffic control.
  timeout connect 100ms
  timeout client 10s
  timeout server 10s
{proxies}"""
        self.config = os.path.join(directory, "haproxy.cfg")
        open(self.config, "w").write(config)
        self.log = open(os.path.join(directory, "haproxy.log"), "w")
        self.process = subprocess.Popen([HAPROXY, "-db", "-f", self.config], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            assert self.process.poll() is None, open(os.path.join(directory, "haproxy.log")).read()
            assert time.monotonic() < deadline, "haproxy did not open its stats socket"
            time.sleep(0.05)

    def command(self, line):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.socket)
            s.sendall((line + "\n").encode())
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        return answer.decode()

    def states(self, backend="web", names=HOSTS):
        """server name -> status, from `show stat` (of `names` only, when given)."""
        rows = {}
        for line in self.command("show stat -1 4 -1").splitlines():
            fields = line.split(",")
            if len(fields) > 20 and fields[0] == backend and fields[1] not in ("BACKEND", "FRONTEND") and \
                    (names is None or fields[1] in names):
                rows[fields[1]] = fields[17]
        return rows

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.log.close()


class Load:
    """A bounded load generator: `threads` clients, each one request at a time through HAProxy (a new connection
    each), counting answers by body and failures (errors and non-200 answers) with their time."""

    def __init__(self, port, threads=3, pause=0.01, path="/"):
        self.port = port
        self.pause = pause
        self.path = path
        self.answers = {}
        # When each answer was first seen (time.time()).
        self.first = {}
        self.failures = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def client(self):
        while not self.stopping.is_set():
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", self.path)
                response = connection.getresponse()
                body = response.read().decode().strip()
                connection.close()
                with self.lock:
                    if response.status == 200:
                        self.answers[body] = self.answers.get(body, 0) + 1
                        self.first.setdefault(body, time.time())
                    else:
                        self.failures.append((time.time(), f"HTTP {response.status}"))
            except OSError as error:
                with self.lock:
                    self.failures.append((time.time(), repr(error)))
            time.sleep(self.pause)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=10)
        return sum(self.answers.values()), len(self.failures)


class Host:
    """One simulated instance: registered with the server, its agent, its install root and service port."""

    def __init__(self, server, name, port, tags="Key=fleet,Value=web"):
        self.name = name
        self.port = port
        self.dir = os.path.join(server.directory, "hosts", name)
        os.makedirs(self.dir + "/fs", exist_ok=True)
        open(self.dir + "/fs/port", "w").write(str(port))
        deployctl("register", "--state", server.state, "--instance-name", name, "--tags", tags,
                  "--endpoint-url", server.url, "--output-dir", self.dir)
        config = os.path.join(self.dir, "codedeployagent.yml")
        text = open(config).read().replace("/etc/codedeploy-agent/conf/", self.dir + "/")
        open(config, "w").write(text.replace("/opt/codedeploy-agent/deployment-root", self.dir + "/root"))
        self.log = open(os.path.join(self.dir, "agent.log"), "a")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
        self.process = subprocess.Popen([BINARY, "agent", "run", "--config", config, "--install-root", self.dir + "/fs"],
                                        stderr=self.log, env=env)

    def version(self):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            connection.request("GET", "/")
            return connection.getresponse().read().decode().strip()
        except OSError:
            return None

    def hooks(self):
        path = self.dir + "/fs/hooks.log"
        return open(path).read().split() if os.path.exists(path) else []

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self.log.close()
        _support.stop_service(self.dir + "/fs")


@pytest.fixture(scope="module")
def fleet():
    if not os.access(HAPROXY, os.X_OK):
        pytest.fail("haproxy is not installed (apt-get install haproxy; .ci/run and Scripts/setup.sh install it)")
    with traffic_fleet() as parts:
        yield parts


@contextlib.contextmanager
def traffic_fleet():
    """HAProxy, a server driving it, and three agents behind it (also used by bench/traffic.py)."""
    ports = {name: free_port() for name in HOSTS + GREEN_HOSTS + LOCAL_HOSTS}
    server = None
    haproxy = None
    hosts = []
    directory = None
    try:
        directory = tempfile.mkdtemp(prefix="deployctl-traffic-")
        haproxy = HAProxy(directory, {"web": {name: ports[name] for name in HOSTS + GREEN_HOSTS},
                                      "local": {name: ports[name] for name in LOCAL_HOSTS}}, disabled=GREEN_HOSTS)
        server = Server(extra_args=("--load-balancer", f"web=unix:{haproxy.socket}", "--load-balancer",
                                    f"gone=unix:{directory}/no-such.sock", "--traffic-health-timeout", "5",
                                    "--traffic-drain-timeout", "10", "--poll-hold", "5"))
        remote(server, "create-application", "--application-name", "shop")
        remote(server, "create-deployment-group", "--application-name", "shop", "--deployment-group-name", "web",
               "--on-premises-instance-tag-filters", "Key=fleet,Value=web,Type=KEY_AND_VALUE",
               "--deployment-config-name", "CodeDeployDefault.OneAtATime",
               "--deployment-style", "deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL",
               "--load-balancer-info", "targetGroupInfoList=[{name=web}]")
        hosts = [Host(server, name, ports[name]) for name in HOSTS]
        yield server, haproxy, hosts, directory, ports
    finally:
        for h in hosts:
            h.stop()
        if server:
            assert server.stop() == 0
        if haproxy:
            haproxy.stop()
        for path in (directory, server.directory if server else None):
            if path:
                subprocess.run(["rm", "-rf", path])


def remote(server, *args, check=True):
    return deployctl(*args, "--endpoint-url", server.url, env=server.env("admin"), check=check, timeout=300)


def push(server, directory, version):
    folder = os.path.join(directory, "rev-" + version)
    make_revision(folder, version)
    remote(server, "push", "--application-name", "shop", "--s3-location", f"s3://releases/{version}.zip", "--source", folder)


def deploy(server, version, timeout=120):
    out = remote(server, "create-deployment", "--application-name", "shop", "--deployment-group-name", "web",
                 "--s3-location", f"bucket=releases,key={version}.zip,bundleType=zip", "--output", "text").stdout.strip()
    remote(server, "wait", "deployment-successful", "--deployment-id", out, "--timeout", str(timeout), check=False)
    return out


def info(server, deployment):
    return json.loads(remote(server, "get-deployment", "--deployment-id", deployment).stdout)["deploymentInfo"]


def events(server, deployment, host):
    out = remote(server, "get-deployment-target", "--deployment-id", deployment, "--target-id", host).stdout
    return {e["lifecycleEventName"]: e for e in json.loads(out)["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]}


def failures(server, deployment):
    """The failed lifecycle events of a deployment, with their diagnostics (for assertion messages)."""
    found = []
    for name in HOSTS:
        for event, detail in events(server, deployment, name).items():
            if detail["status"] == "Failed":
                found.append((name, event, detail.get("diagnostics")))
    return found


def test_in_place_with_traffic_control_drops_no_request_and_without_it_does(fleet):
    server, haproxy, hosts, directory, _ = fleet
    for version in ("v1", "v2", "v3"):
        push(server, directory, version)
    # The first release starts the services (no load yet: nothing serves before it).
    first = deploy(server, "v1")
    assert info(server, first)["status"] == "Succeeded", failures(server, first)
    assert set(haproxy.states().values()) == {"UP"}, haproxy.states()

    load = Load(haproxy.port)
    time.sleep(0.5)
    started = time.monotonic()
    second = deploy(server, "v2")
    elapsed = time.monotonic() - started
    time.sleep(0.5)
    served, failed = load.stop()
    detail = info(server, second)
    assert detail["status"] == "Succeeded", failures(server, second)
    assert detail["loadBalancerInfo"] == {"targetGroupInfoList": [{"name": "web"}]}
    assert failed == 0, f"{failed} of {served + failed} requests failed with traffic control: {load.failures[:5]}"
    assert load.answers.get("v2", 0) > 0 and served > 50, load.answers
    for h in hosts:
        assert h.version() == "v2", h.name
        lifecycle = events(server, second, h.name)
        for event in ("BlockTraffic", "AllowTraffic", "BeforeBlockTraffic", "AfterAllowTraffic"):
            assert lifecycle[event]["status"] == "Succeeded", (h.name, event, lifecycle[event])
        block = lifecycle["BlockTraffic"]["diagnostics"]
        assert f"set server web/{h.name} state drain" in block["logTail"] and f"set server web/{h.name} state maint" in block["logTail"]
        assert "Drained web/" in block["message"]
        allow = lifecycle["AllowTraffic"]["diagnostics"]
        assert f"set server web/{h.name} state ready" in allow["logTail"], allow
        # AWS's order: the block hooks around BlockTraffic before ApplicationStop, the allow hooks at the end.
        assert h.hooks()[-4:] == ["BeforeBlockTraffic", "AfterBlockTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"], (h.hooks(), lifecycle)
    assert set(haproxy.states().values()) == {"UP"}, haproxy.states()
    # Every balancer command is in the event stream too.
    stream = remote(server, "events", "--deployment-id", second).stdout
    assert "set server web/web-1 state drain" in stream

    # The same release without traffic control: requests are lost while each service restarts.
    remote(server, "update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "web",
           "--deployment-style", "deploymentType=IN_PLACE,deploymentOption=WITHOUT_TRAFFIC_CONTROL")
    load = Load(haproxy.port)
    time.sleep(0.5)
    third = deploy(server, "v3")
    time.sleep(0.5)
    served_without, failed_without = load.stop()
    assert info(server, third)["status"] == "Succeeded"
    assert events(server, third, "web-1")["BlockTraffic"]["status"] == "Skipped"
    assert failed_without > 0, f"no request failed without traffic control ({served_without} served)"
    print(f"\nwith traffic control: {failed} of {served + failed} failed ({elapsed:.1f} s deployment); "
          f"without: {failed_without} of {served_without + failed_without} failed")
    remote(server, "update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "web",
           "--deployment-style", "deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL")


def set_balancer(server, name):
    remote(server, "update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "web",
           "--load-balancer-info", f"targetGroupInfoList=[{{name={name}}}]")


def test_bad_balancer_settings_fail_the_deployment_before_anything_is_drained(fleet):
    server, haproxy, hosts, directory, _ = fleet
    push(server, directory, "v5")
    before = haproxy.states()
    assert set(before.values()) == {"UP"}, before
    cases = [
        # A server the backend does not have (web-3's tag names it): found before web-1 is drained.
        ("web", ("add-tags-to-on-premises-instances", "--instance-names", "web-3", "--tags", "Key=haproxy-server,Value=web-9"),
         "has no server 'web-9' in backend 'web'"),
        # A balancer the server was not told about.
        ("api", None, "no balancer named 'api' is configured here (configured: gone, web)"),
        # A balancer whose runtime API cannot be reached.
        ("gone", None, "cannot reach HAProxy's runtime API at unix:"),
    ]
    load = Load(haproxy.port)
    try:
        for balancer, setup, expected in cases:
            set_balancer(server, balancer)
            if setup:
                remote(server, *setup)
            deployment = deploy(server, "v5")
            found = failures(server, deployment)
            assert info(server, deployment)["status"] == "Failed"
            assert [(name, event) for name, event, _ in found] == [("web-1", "BlockTraffic")], found
            assert expected in found[0][2]["message"], found[0][2]["message"]
            assert haproxy.states() == before, "a server was changed"
            assert all(h.version() != "v5" for h in hosts)
            if setup:
                remote(server, "remove-tags-from-on-premises-instances", "--instance-names", "web-3",
                       "--tags", "Key=haproxy-server,Value=web-9")
    finally:
        set_balancer(server, "web")
        served, failed = load.stop()
    assert failed == 0, load.failures[:5]


def test_a_server_whose_health_checks_never_pass_gets_no_traffic_and_the_release_rolls_back(fleet):
    server, haproxy, hosts, directory, _ = fleet
    good = hosts[0].version()
    push(server, directory, "sick-v6")
    remote(server, "update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "web",
           "--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE")
    load = Load(haproxy.port)
    try:
        deployment = deploy(server, "sick-v6")
        detail = info(server, deployment)
        assert detail["status"] == "Failed"
        found = failures(server, deployment)
        assert [(name, event) for name, event, _ in found] == [("web-1", "AllowTraffic")], found
        message = found[0][2]["message"]
        assert "did not pass its health checks within 5 s" in message and "L7STS" in message, message
        # The rollback puts the last good release back on web-1 and lets it serve again.
        rollback = detail["rollbackInfo"]["rollbackDeploymentId"]
        remote(server, "wait", "deployment-successful", "--deployment-id", rollback, "--timeout", "120", check=False)
        assert info(server, rollback)["status"] == "Succeeded", failures(server, rollback)
    finally:
        served, failed = load.stop()
        remote(server, "update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "web",
               "--auto-rollback-configuration", "enabled=false")
    # The sick release never answered a request through HAProxy: its server was never made ready.
    assert "sick-v6" not in load.answers, load.answers
    assert failed == 0, load.failures[:5]
    assert [h.version() for h in hosts] == [good] * 3
    assert set(haproxy.states().values()) == {"UP"}, haproxy.states()


def test_on_a_state_file_each_agent_drives_the_balancer_for_its_own_instance(fleet):
    _, haproxy, _, directory, ports = fleet
    folder = os.path.join(directory, "local")
    os.makedirs(folder, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
    env["DEPLOYCTL_STATE"] = os.path.join(folder, "state.db")

    def run(*args, check=True):
        return deployctl(*args, env=env, check=check, timeout=300)

    run("create-application", "--application-name", "shop")
    for name in LOCAL_HOSTS:
        run("register-on-premises-instance", "--instance-name", name)
        os.makedirs(f"{folder}/{name}/fs", exist_ok=True)
        open(f"{folder}/{name}/fs/port", "w").write(str(ports[name]))
    run("add-tags-to-on-premises-instances", "--instance-names", *LOCAL_HOSTS, "--tags", "Key=fleet,Value=local")
    run("create-deployment-group", "--application-name", "shop", "--deployment-group-name", "local",
        "--on-premises-instance-tag-filters", "Key=fleet,Value=local,Type=KEY_AND_VALUE",
        "--deployment-style", "deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL",
        "--load-balancer-info", "targetGroupInfoList=[{name=local}]")
    agents = []
    try:
        for name in LOCAL_HOSTS:
            log = open(f"{folder}/{name}/agent.log", "w")
            agents.append((subprocess.Popen(
                [BINARY, "agent", "run", "--instance-name", name, "--agent-root", f"{folder}/{name}/root",
                 "--install-root", f"{folder}/{name}/fs", "--poll-interval", "0.2",
                 "--load-balancer", f"local=unix:{haproxy.socket}",
                 "--load-balancer", f"local=tcp:127.0.0.1:{haproxy.runtime_port}", "--traffic-health-timeout", "10"],
                env=env, stderr=log), log))
        results = {}
        for version in ("v1", "v2"):
            rev = os.path.join(folder, "rev-" + version)
            make_revision(rev, version)
            run("push", "--application-name", "shop", "--s3-location", f"s3://releases/{version}.zip", "--source", rev)
            load = Load(haproxy.ports["local"]) if version == "v2" else None
            out = run("create-deployment", "--application-name", "shop", "--deployment-group-name", "local",
                      "--s3-location", f"bucket=releases,key={version}.zip,bundleType=zip", "--wait", "--timeout", "120",
                      "--query", "deploymentId", "--output", "text", check=False)
            deployment = out.stdout.strip()
            results[version] = load.stop() if load else None
            assert out.returncode == 0, out.stdout + out.stderr
        served, failed = results["v2"]
        assert failed == 0 and served > 20, (served, failed)
        assert set(haproxy.states("local", names=None).values()) == {"UP"}
        for name in LOCAL_HOSTS:
            version = http.client.HTTPConnection("127.0.0.1", ports[name], timeout=2)
            version.request("GET", "/")
            assert version.getresponse().read().decode().strip() == "v2"
            assert "drove the load balancer for" in open(f"{folder}/{name}/agent.log").read()
            # Both nodes of the pair got every change (here the same HAProxy through its two sockets).
            target = json.loads(run("get-deployment-target", "--deployment-id", deployment, "--target-id", name).stdout)
            events = {e["lifecycleEventName"]: e for e in target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]}
            tail = events["BlockTraffic"]["diagnostics"]["logTail"]
            for node in (f"unix:{haproxy.socket}", f"tcp:127.0.0.1:{haproxy.runtime_port}"):
                assert f"{node} set server local/{name} state drain" in tail, tail
            assert "on 2 node(s)" in events["AllowTraffic"]["diagnostics"]["message"]
    finally:
        for process, log in agents:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            log.close()
        for name in LOCAL_HOSTS:
            _support.stop_service(f"{folder}/{name}/fs")


def test_a_malformed_load_balancer_flag_is_a_usage_error():
    """Exit 252, the aws CLI v2 code for bad usage (README)."""
    for flag, expected in (("web", "expected NAME=unix:/PATH or NAME=tcp:HOST:PORT"),
                           ("web=http://x", "is not a runtime API address"),
                           ("we b=unix:/x", "expected NAME=unix:/PATH")):
        result = deployctl("agent", "run", "--instance-name", "x", "--once", "--load-balancer", flag, check=False)
        assert result.returncode == 252 and expected in result.stderr, (flag, result.returncode, result.stderr)
    result = deployctl("server", "--load-balancer", "web=unix:/x", "--traffic-drain-timeout", "-1", check=False)
    assert result.returncode == 252 and "--traffic-drain-timeout must be a number of seconds from 0 to 3600" in result.stderr


def release(server, version, green_tag):
    """A blue/green release of `version` to the instances tagged `green_tag` (group bg)."""
    return remote(server, "create-deployment", "--application-name", "shop", "--deployment-group-name", "bg",
                  "--s3-location", f"bucket=releases,key={version}.zip,bundleType=zip", "--file-exists-behavior", "OVERWRITE",
                  "--target-instances", json.dumps({"tagFilters": [
                      {"Key": green_tag[0], "Value": green_tag[1], "Type": "KEY_AND_VALUE"}]}),
                  "--output", "text").stdout.strip()


def serving(haproxy):
    """The ports that answer through HAProxy for a second."""
    probe = Load(haproxy.port, path="/who")
    time.sleep(1)
    probe.stop()
    return {int(body.split()[1]) for body in probe.answers}


def test_blue_green_moves_all_traffic_to_the_green_fleet_without_dropping_a_request(fleet):
    server, haproxy, hosts, directory, ports = fleet
    greens = [Host(server, name, ports[name], tags="Key=color,Value=green") for name in GREEN_HOSTS]
    hosts.extend(greens)  # stopped by the fixture
    web_ports = {ports[name] for name in HOSTS}
    green_ports = {ports[name] for name in GREEN_HOSTS}
    everyone = HOSTS + GREEN_HOSTS

    def configure(blue_tag, ready_option):
        remote(server, "update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "bg",
               "--on-premises-instance-tag-filters", f"Key={blue_tag[0]},Value={blue_tag[1]},Type=KEY_AND_VALUE",
               "--blue-green-deployment-configuration", json.dumps({
                   "deploymentReadyOption": ready_option,
                   "terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"},
                   "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"}}))

    def wait(deployment):
        return remote(server, "wait", "deployment-successful", "--deployment-id", deployment, "--timeout", "120", check=False)

    remote(server, "create-deployment-group", "--application-name", "shop", "--deployment-group-name", "bg",
           "--on-premises-instance-tag-filters", "Key=fleet,Value=web,Type=KEY_AND_VALUE",
           "--deployment-config-name", "CodeDeployDefault.AllAtOnce",
           "--deployment-style", "deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL",
           "--load-balancer-info", "targetGroupInfoList=[{name=web}]")
    for version in ("bg1", "bg2", "bg3"):
        push(server, directory, version)

    # 1. Blue web-1..3 serve; green-1..3 (in maintenance) get bg1 and all the traffic.
    configure(("fleet", "web"), {"actionOnTimeout": "CONTINUE_DEPLOYMENT"})
    assert serving(haproxy) <= web_ports
    load = Load(haproxy.port)
    first = release(server, "bg1", ("color", "green"))
    wait(first)
    served, failed = load.stop()
    detail = info(server, first)
    assert detail["status"] == "Succeeded", failures(server, first)
    assert detail["deploymentStyle"] == {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    assert detail["deploymentOverview"]["Succeeded"] == 6 and detail["targetInstances"]["tagFilters"][0]["Value"] == "green"
    assert failed == 0, f"{failed} of {served + failed} requests failed during blue/green: {load.failures[:5]}"
    assert load.answers.get("bg1", 0) > 0
    assert serving(haproxy) == green_ports
    states = haproxy.states(names=everyone)
    assert {states[name] for name in HOSTS} == {"MAINT"} and {states[name] for name in GREEN_HOSTS} == {"UP"}, states
    target = json.loads(remote(server, "get-deployment-target", "--deployment-id", first, "--target-id", "web-1").stdout)
    assert target["deploymentTarget"]["instanceTarget"]["instanceLabel"] == "Blue"
    assert [e["lifecycleEventName"] for e in target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]] == [
        "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    instance = json.loads(remote(server, "get-deployment-instance", "--deployment-id", first, "--instance-id", "green-1").stdout)
    assert instance["instanceSummary"]["instanceType"] == "Green"

    # 2. The other way (the group's tags now name the serving fleet): bg2 waits Ready until continue-deployment.
    configure(("color", "green"), {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60})
    load = Load(haproxy.port)
    second = release(server, "bg2", ("fleet", "web"))
    waited = wait(second)
    assert waited.returncode != 0 and "is Ready" in waited.stderr, waited.stderr
    assert f"deployctl continue-deployment --deployment-id {second} --deployment-wait-type READY_WAIT" in waited.stderr
    detail = info(server, second)
    assert detail["status"] == "Ready" and detail["deploymentOverview"]["Ready"] == 3, detail
    assert serving(haproxy) == green_ports, "traffic moved before continue-deployment"
    remote(server, "continue-deployment", "--deployment-id", second, "--deployment-wait-type", "READY_WAIT")
    wait(second)
    served, failed = load.stop()
    assert info(server, second)["status"] == "Succeeded", failures(server, second)
    assert failed == 0, load.failures[:5]
    assert serving(haproxy) == web_ports
    states = haproxy.states(names=everyone)
    assert {states[name] for name in GREEN_HOSTS} == {"MAINT"}, states

    # 3. Not continued within its wait (0 minutes here): Stopped, and traffic stays where it was.
    configure(("fleet", "web"), {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 0})
    load = Load(haproxy.port)
    third = release(server, "bg3", ("color", "green"))
    deadline = time.monotonic() + 60
    while info(server, third)["status"] not in ("Stopped", "Succeeded", "Failed") and time.monotonic() < deadline:
        time.sleep(0.3)  # the server's clock ends the wait
    served, failed = load.stop()
    detail = info(server, third)
    assert detail["status"] == "Stopped" and detail["errorInformation"]["code"] == "TIMEOUT", detail
    assert failed == 0 and "bg3" not in load.answers, (load.failures[:5], load.answers)
    assert serving(haproxy) == web_ports

    # A green selection that is empty or overlaps blue is refused before anything starts.
    for tag, expected in ((("color", "purple"), "not currently applied to any instances"),
                          (("fleet", "web"), "which the deployment group's tags select too")):
        refused = remote(server, "create-deployment", "--application-name", "shop", "--deployment-group-name", "bg",
                         "--s3-location", "bucket=releases,key=bg3.zip,bundleType=zip",
                         "--target-instances", json.dumps({"tagFilters": [{"Key": tag[0], "Value": tag[1], "Type": "KEY_AND_VALUE"}]}),
                         check=False)
        assert refused.returncode != 0 and "InvalidTargetInstancesException" in refused.stderr and expected in refused.stderr, \
            refused.stderr


def test_a_canary_moves_ten_percent_then_all_and_an_alarm_mid_shift_moves_it_back(fleet):
    """Runs after the blue/green test: web-1..3 serve, green-1..3 wait drained."""
    server, haproxy, hosts, directory, ports = fleet
    green_ports = {ports[name] for name in GREEN_HOSTS}
    remote(server, "create-deployment-config", "--deployment-config-name", "Canary10", "--compute-platform", "Server",
           "--traffic-routing-config", "type=TimeBasedCanary,timeBasedCanary={canaryPercentage=10,canaryInterval=1}")
    for version in ("c1", "c2"):
        push(server, directory, version)

    def configure(blue_tag, *extra):
        remote(server, "update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "bg",
               "--deployment-config-name", "Canary10",
               "--on-premises-instance-tag-filters", f"Key={blue_tag[0]},Value={blue_tag[1]},Type=KEY_AND_VALUE",
               "--blue-green-deployment-configuration", json.dumps({
                   "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
                   "terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"}}), *extra)

    def until(deployment, predicate, seconds=120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            detail = info(server, deployment)
            if predicate(detail):
                return detail
            time.sleep(0.2)
        raise AssertionError(f"{deployment}: {json.dumps(info(server, deployment))[:2000]}")

    def shifted(percent):
        return lambda d: any(m.startswith(f"Traffic shifting: {percent}%") for m in d.get("deploymentStatusMessages", []))

    # 10 %, measured from the responses, then everything.
    configure(("fleet", "web"))
    load = Load(haproxy.port)
    canary = release(server, "c1", ("color", "green"))
    until(canary, shifted(10))
    probe = Load(haproxy.port, path="/who")
    time.sleep(20)
    probe.stop()
    by_port = {}
    for body, count in probe.answers.items():
        by_port[int(body.split()[1])] = by_port.get(int(body.split()[1]), 0) + count
    total = sum(by_port.values())
    green_share = sum(count for port, count in by_port.items() if port in green_ports) / total
    assert total > 200 and abs(green_share - 0.10) < 0.04, (green_share, by_port)
    detail = until(canary, lambda d: d["status"] in ("Succeeded", "Failed", "Stopped"))
    served, failed = load.stop()
    assert detail["status"] == "Succeeded", failures(server, canary)
    assert failed == 0, load.failures[:5]
    assert serving(haproxy) == green_ports
    print(f"\ncanary: green answered {green_share:.1%} of {total} requests at the 10% step")

    # An alarm while 10 % goes to the new fleet: stopped, rolled back, all traffic on the old fleet again.
    remote(server, "put-alarm", "--alarm-name", "errors-high", "--manual")
    configure(("color", "green"), "--alarm-configuration", "enabled=true,alarms=[{name=errors-high}]",
              "--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_STOP_ON_ALARM")
    load = Load(haproxy.port)
    sick = release(server, "c2", ("fleet", "web"))
    until(sick, shifted(10))
    time.sleep(2)
    remote(server, "set-alarm-state", "--alarm-name", "errors-high", "--state-value", "ALARM", "--state-reason", "5xx above 1 %")
    stopped = until(sick, lambda d: d["status"] in ("Stopped", "Failed", "Succeeded"))
    assert stopped["status"] == "Stopped" and stopped["errorInformation"]["code"] == "ALARM_ACTIVE", stopped
    rollback = stopped["rollbackInfo"]["rollbackDeploymentId"]
    done = until(rollback, lambda d: d["status"] in ("Succeeded", "Failed", "Stopped"))
    served, failed = load.stop()
    remote(server, "set-alarm-state", "--alarm-name", "errors-high", "--state-value", "OK", "--state-reason", "recovered")
    assert done["status"] == "Succeeded", failures(server, rollback)
    assert failed == 0, load.failures[:5]
    assert load.answers.get("c2", 0) > 0, "the canary never got a request"
    assert serving(haproxy) == green_ports, "traffic is not back on the fleet that served before the canary"
    states = haproxy.states(names=HOSTS)
    assert set(states.values()) == {"MAINT"}, states
