"""Alarms deployctl evaluates (issue 24): a real Prometheus (Debian's package, started here on loopback with its
config and data in a temporary directory, stopped by its PID) scrapes a small service the deployment's hooks
install; a bad revision makes it report errors, the Prometheus alarm fires, the deployment stops with ALARM_ACTIVE
and rolls back to the good revision, and the service is healthy again. HTTP-probe alarms and an unreachable
Prometheus are checked against the same server.
"""
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

_here = os.path.dirname(os.path.abspath(__file__))
_support_spec = importlib.util.spec_from_file_location("e2e_support", os.path.join(os.path.dirname(_here), "e2e_support.py"))
_support = importlib.util.module_from_spec(_support_spec)
_support_spec.loader.exec_module(_support)
_server = _support.server_conftest()
BINARY, Server, deployctl = _server.BINARY, _server.Server, _server.deployctl

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

# The service: `/` answers its version, `/metrics` reports `app_errors 1` for a version named bad-*, 0 otherwise.
SERVICE = r'''
import http.server, os, sys
root = os.path.dirname(os.path.abspath(__file__))
version = open(os.path.join(root, "version")).read().strip()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/metrics":
            body = ("# TYPE app_errors gauge\napp_errors %d\n" % (1 if version.startswith("bad") else 0)).encode()
        else:
            body = (version + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''

START = _support.start_script("srv/svc")
STOP = _support.STOP

# ValidateService watches the new service for a few seconds, as a real check would: the alarms are polled meanwhile.
VALIDATE = """#!/bin/sh
sleep 8
"""


free_port = _support.free_port


def make_revision(folder, version):
    os.makedirs(folder + "/svc", exist_ok=True)
    os.makedirs(folder + "/scripts", exist_ok=True)
    open(folder + "/svc/server.py", "w").write(SERVICE)
    open(folder + "/svc/version", "w").write(version + "\n")
    for name, body in (("start.sh", START), ("stop.sh", STOP), ("validate.sh", VALIDATE)):
        open(f"{folder}/scripts/{name}", "w").write(body)
        os.chmod(f"{folder}/scripts/{name}", 0o755)
    open(folder + "/appspec.yml", "w").write("\n".join([
        "version: 0.0", "os: linux", "files:", "  - source: svc", "    destination: /srv/svc", "hooks:",
        "  ApplicationStop:", "    - location: scripts/stop.sh", "      timeout: 30",
        "  ApplicationStart:", "    - location: scripts/start.sh", "      timeout: 30",
        "  ValidateService:", "    - location: scripts/validate.sh", "      timeout: 30", ""]))


class Prometheus:
    """Prometheus scraping one target every second, on loopback, its data in a temporary directory."""

    def __init__(self, directory, target_port):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(directory, "prometheus.yml")
        open(config, "w").write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: svc
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
""")
        self.log = open(os.path.join(directory, "prometheus.log"), "w")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory}/data",
             f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                if urllib.request.urlopen(self.url + "/-/ready", timeout=1).status == 200:
                    break
            except OSError:
                pass
            assert self.process.poll() is None, open(os.path.join(directory, "prometheus.log")).read()[-2000:]
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def setup():
    if not os.access(PROMETHEUS, os.X_OK):
        pytest.fail("prometheus is not installed (apt-get install prometheus; .ci/run and Scripts/setup.sh install it)")
    directory = tempfile.mkdtemp(prefix="deployctl-notify-")
    service_port = free_port()
    prometheus = server = agent = None
    try:
        prometheus = Prometheus(directory, service_port)
        server = Server(extra_args=("--alarm-interval", "1", "--poll-hold", "5"))
        agent, agent_log = _support.start_agent(server, "svc-1", "Key=app,Value=svc", os.path.join(directory, "host"), port=service_port)
        remote(server, "create-application", "--application-name", "svc")
        remote(server, "create-deployment-group", "--application-name", "svc", "--deployment-group-name", "prod",
               "--on-premises-instance-tag-filters", "Key=app,Value=svc,Type=KEY_AND_VALUE",
               "--alarm-configuration", "enabled=true,alarms=[{name=svc-errors}]",
               "--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_ALARM")
        for version in ("good-1", "bad-2", "good-3"):
            folder = os.path.join(directory, version)
            make_revision(folder, version)
            remote(server, "push", "--application-name", "svc", "--s3-location", f"s3://releases/{version}.zip", "--source", folder)
        yield server, prometheus, service_port, directory
    finally:
        if agent:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=60)
            agent_log.close()
        _support.stop_service(os.path.join(directory, "host", "fs"))
        if server:
            assert server.stop() == 0
            subprocess.run(["rm", "-rf", server.directory])
        if prometheus:
            prometheus.stop()
        subprocess.run(["rm", "-rf", directory])


remote, info, until = _support.remote, _support.deployment_info, _support.until


def deploy(server, version):
    deployment = remote(server, "create-deployment", "--application-name", "svc", "--deployment-group-name", "prod",
                        "--s3-location", f"bucket=releases,key={version}.zip,bundleType=zip", "--output", "text").stdout.strip()
    return deployment


def alarm(server, name):
    return json.loads(remote(server, "describe-alarms", "--alarm-names", name).stdout)["Alarms"][0]


def serving(port):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode().strip()


def test_a_prometheus_alarm_stops_a_bad_release_and_rolls_it_back(setup):
    server, prometheus, port, _ = setup
    remote(server, "put-alarm", "--alarm-name", "svc-errors", "--prometheus-url", prometheus.url,
           "--prometheus-query", "max(app_errors) > 0", "--for", "2")
    good = deploy(server, "good-1")
    assert until(server, good)["status"] == "Succeeded"
    assert serving(port) == "good-1"
    assert alarm(server, "svc-errors")["StateValue"] == "OK"

    started = time.monotonic()
    bad = deploy(server, "bad-2")
    stopped = until(server, bad)
    took = time.monotonic() - started
    assert stopped["status"] == "Stopped", stopped
    assert stopped["errorInformation"]["code"] == "ALARM_ACTIVE" and "<svc-errors>" in stopped["errorInformation"]["message"]
    assert took < 30, f"the alarm took {took:.1f} s to stop the deployment"
    described = alarm(server, "svc-errors")
    assert described["Kind"] == "prometheus" and described["PrometheusQuery"] == "max(app_errors) > 0" and described["ForSeconds"] == 2

    rollback = stopped["rollbackInfo"]["rollbackDeploymentId"]
    assert until(server, rollback)["status"] == "Succeeded"
    assert serving(port) == "good-1"
    # Healthy again: the alarm goes back to OK once Prometheus scrapes the good service.
    deadline = time.monotonic() + 30
    while alarm(server, "svc-errors")["StateValue"] != "OK":
        assert time.monotonic() < deadline, alarm(server, "svc-errors")
        time.sleep(0.5)
    # Each evaluation was in the event stream.
    stream = remote(server, "events", "--deployment-id", bad).stdout
    assert "deployctl Alarm Evaluation" in stream and '"state": "ALARM"' in stream


def test_an_unreachable_prometheus_stops_a_deployment_unless_poll_failures_are_ignored(setup):
    server, _, port, _ = setup
    closed = free_port()
    remote(server, "put-alarm", "--alarm-name", "svc-errors", "--prometheus-url", f"http://127.0.0.1:{closed}",
           "--prometheus-query", "max(app_errors) > 0")
    deployment = deploy(server, "good-3")
    stopped = until(server, deployment)
    assert stopped["status"] == "Stopped" and stopped["errorInformation"]["code"] == "CODEDEPLOY_RESOURCE_CANNOT_BE_FOUND", stopped
    assert "cannot be retrieved: svc-errors" in stopped["errorInformation"]["message"]
    assert alarm(server, "svc-errors")["StateValue"] == "INSUFFICIENT_DATA"
    remote(server, "update-deployment-group", "--application-name", "svc", "--current-deployment-group-name", "prod",
           "--alarm-configuration", "enabled=true,ignorePollAlarmFailure=true,alarms=[{name=svc-errors}]")
    deployment = deploy(server, "good-3")
    assert until(server, deployment)["status"] == "Succeeded"
    assert serving(port) == "good-3"
    remote(server, "update-deployment-group", "--application-name", "svc", "--current-deployment-group-name", "prod",
           "--alarm-configuration", "enabled=true,alarms=[{name=svc-errors}]")


def test_an_http_probe_alarm_fires_after_its_failures(setup):
    server, prometheus, _, _ = setup
    remote(server, "put-alarm", "--alarm-name", "svc-errors", "--http-url", prometheus.url + "/no-such-page", "--failures", "2")
    deployment = deploy(server, "good-1")
    stopped = until(server, deployment)
    assert stopped["status"] == "Stopped" and stopped["errorInformation"]["code"] == "ALARM_ACTIVE", stopped
    described = alarm(server, "svc-errors")
    assert described["StateValue"] == "ALARM" and "answered 404, expected 200 (2 of 2 in a row)" in described["StateReason"], described
    # The same probe against a page that answers: OK, and the deployment goes through.
    remote(server, "put-alarm", "--alarm-name", "svc-errors", "--http-url", prometheus.url + "/-/healthy", "--failures", "2")
    deadline = time.monotonic() + 20
    while alarm(server, "svc-errors")["StateValue"] != "OK":
        assert time.monotonic() < deadline, alarm(server, "svc-errors")
        time.sleep(0.5)
    rollback_done = stopped.get("rollbackInfo", {}).get("rollbackDeploymentId")
    if rollback_done:
        until(server, rollback_done)
    deployment = deploy(server, "good-1")
    assert until(server, deployment)["status"] == "Succeeded"


def test_bad_alarm_definitions_are_usage_errors(setup):
    server, _, _, _ = setup
    for args, expected in (
        (("--prometheus-query", "up"), "--prometheus-query and --prometheus-url go together"),
        (("--manual", "--http-url", "http://127.0.0.1/"), "Give one kind of alarm"),
        (("--http-url", "ftp://127.0.0.1/"), "must be an http:// or https:// URL"),
        (("--http-url", "http://127.0.0.1/", "--failures", "0"), "--failures 1 to 100"),
    ):
        result = remote(server, "put-alarm", "--alarm-name", "x", *args, check=False)
        assert result.returncode != 0 and expected in result.stderr, (args, result.stderr)
