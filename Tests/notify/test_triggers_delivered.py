"""Trigger notifications delivered to a real HTTP receiver (issue 24): topics and subscriptions made with the real
`aws sns` CLI against deployctl server, SNS's SubscriptionConfirmation confirmed through its SubscribeURL, every
trigger of a deployment delivered in order with a valid Standard Webhooks signature, and delivered again after the
server is killed with SIGKILL mid-delivery and restarted on the same state file: nothing lost, duplicates
recognisable by their id. A receiver that answers 500 or hangs is retried and recorded, never slowing the deployment.
"""
import base64
import hashlib
import hmac
import http.server
import importlib.util
import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

_here = os.path.dirname(os.path.abspath(__file__))
_support_spec = importlib.util.spec_from_file_location("e2e_support", os.path.join(os.path.dirname(_here), "e2e_support.py"))
_support = importlib.util.module_from_spec(_support_spec)
_support_spec.loader.exec_module(_support)
_server = _support.server_conftest()
BINARY, Server, deployctl = _server.BINARY, _server.Server, _server.deployctl

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SERVER_ARGS = ("--poll-hold", "5", "--delivery-first-retry", "1", "--delivery-timeout", "2")


class Receiver:
    """An SNS-style HTTP receiver on loopback: confirms subscriptions through SubscribeURL (trusting the server's CA),
    verifies each notification's Standard Webhooks signature, and records what it got. `mode` makes it answer 500
    (`fail`) or hold the request (`hang`) until told otherwise."""

    def __init__(self, ca):
        self.got = []
        self.received = []
        self.mode = "ok"
        self.attempts = 0
        self.lock = threading.Lock()
        self.context = ssl.create_default_context(cafile=ca)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                envelope = json.loads(body)
                with receiver.lock:
                    receiver.attempts += 1
                    receiver.received.append(envelope)
                    mode = receiver.mode
                if envelope["Type"] == "SubscriptionConfirmation":
                    urllib.request.urlopen(envelope["SubscribeURL"], context=receiver.context, timeout=10).read()
                elif mode == "fail":
                    return self.answer(500)
                elif mode == "hang":
                    while receiver.mode == "hang":
                        time.sleep(0.05)
                    return
                signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode() + body
                key = base64.b64decode(SECRET[len("whsec_"):])
                expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
                with receiver.lock:
                    receiver.got.append({"headers": dict(self.headers), "envelope": envelope, "valid": hmac.compare_digest(
                        expected, self.headers.get("webhook-signature", ""))})
                self.answer(200)

            def answer(self, status):
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def notifications(self):
        with self.lock:
            return [item for item in self.got if item["envelope"]["Type"] == "Notification"]

    def stop(self):
        self.mode = "ok"
        self.server.shutdown()
        self.server.server_close()


remote = _support.remote


def restart(server):
    """SIGKILL, then the same state file and port again."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    server.process = subprocess.Popen(
        [BINARY, "server", "--state", server.state, "--listen", f"127.0.0.1:{server.port}", *SERVER_ARGS],
        stdout=subprocess.PIPE, stderr=server.stderr, text=True)
    line = server.process.stdout.readline()
    assert "serving" in line, server.log()[-3000:]


def wait_for(what, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        value = what()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def setup():
    directory = tempfile.mkdtemp(prefix="deployctl-triggers-")
    server = agent = receiver = None
    try:
        server = Server(extra_args=SERVER_ARGS)
        receiver = Receiver(server.ca)
        agent, agent_log = _support.start_agent(server, "web-1", "Key=app,Value=web", os.path.join(directory, "host"))
        revision = os.path.join(directory, "revision")
        os.makedirs(revision + "/site")
        open(revision + "/site/index.html", "w").write("hello\n")
        open(revision + "/appspec.yml", "w").write("version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\n")
        remote(server, "create-application", "--application-name", "web")
        remote(server, "push", "--application-name", "web", "--s3-location", "s3://releases/web.zip", "--source", revision)
        yield server, receiver
    finally:
        if agent:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=60)
            agent_log.close()
        if receiver:
            receiver.stop()
        if server:
            server.stop()
            subprocess.run(["rm", "-rf", server.directory])
        subprocess.run(["rm", "-rf", directory])


def subscribe(server, receiver, topic):
    """A topic with the receiver subscribed through the real aws CLI, confirmed by the receiver; its ARN."""
    made = server.aws("sns", "create-topic", "--name", topic)
    assert made.returncode == 0, made.stderr
    arn = json.loads(made.stdout)["TopicArn"]
    assert arn == f"arn:aws:sns:local:000000000000:{topic}" or arn.endswith(":" + topic), arn
    subscribed = server.aws("sns", "subscribe", "--topic-arn", arn, "--protocol", "http", "--notification-endpoint", receiver.url,
                            "--attributes", f"SigningSecret={SECRET}")
    assert subscribed.returncode == 0, subscribed.stderr
    assert json.loads(subscribed.stdout)["SubscriptionArn"] == "pending confirmation"

    def confirmed():
        listed = json.loads(server.aws("sns", "list-subscriptions-by-topic", "--topic-arn", arn).stdout)["Subscriptions"]
        return listed and listed[0]["SubscriptionArn"].startswith(arn + ":") and listed[0]
    subscription = wait_for(confirmed, 30)
    assert subscription["Endpoint"] == receiver.url and subscription["Protocol"] == "http"
    return arn


def deploy(server, group):
    deployment = remote(server, "create-deployment", "--application-name", "web", "--deployment-group-name", group,
                        "--s3-location", "bucket=releases,key=web.zip,bundleType=zip", "--output", "text").stdout.strip()
    return deployment


def status(server, deployment):
    return json.loads(remote(server, "get-deployment", "--deployment-id", deployment).stdout)["deploymentInfo"]["status"]


def test_the_aws_cli_manages_topics_and_publish_reaches_a_confirmed_subscription(setup):
    server, receiver = setup
    arn = subscribe(server, receiver, "publish-test")
    assert arn in json.loads(server.aws("sns", "list-topics").stdout)["Topics"][0].values() or any(
        t["TopicArn"] == arn for t in json.loads(server.aws("sns", "list-topics").stdout)["Topics"])
    published = server.aws("sns", "publish", "--topic-arn", arn, "--message", "hello", "--subject", "greeting")
    assert published.returncode == 0, published.stderr
    message_id = json.loads(published.stdout)["MessageId"]
    item = wait_for(lambda: next((n for n in receiver.notifications() if n["envelope"]["MessageId"] == message_id), None))
    envelope, headers = item["envelope"], item["headers"]
    assert item["valid"], headers
    assert envelope["Type"] == "Notification" and envelope["TopicArn"] == arn and envelope["Message"] == "hello"
    assert envelope["Subject"] == "greeting" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", envelope["Timestamp"])
    assert headers["x-amz-sns-message-type"] == "Notification" and headers["webhook-id"] == message_id
    assert headers["Content-Type"].startswith("text/plain")
    # SNS's errors, as the aws CLI shows them.
    missing = server.aws("sns", "publish", "--topic-arn", arn + "-nope", "--message", "x")
    assert missing.returncode != 0 and "NotFound" in missing.stderr, missing.stderr
    bad = server.aws("sns", "subscribe", "--topic-arn", arn, "--protocol", "email", "--notification-endpoint", "a@example.com")
    assert bad.returncode != 0 and "InvalidParameter" in bad.stderr, bad.stderr
    denied = server.aws("sns", "create-topic", "--name", "nope", role="read-only")
    assert denied.returncode != 0 and "AuthorizationError" in denied.stderr, denied.stderr
    # The confirmation link checks its token.
    link = f"{server.url}/?Action=ConfirmSubscription&TopicArn={arn}&Token={'0' * 64}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(link, context=receiver.context, timeout=10)
    assert refused.value.code == 400 and b"Invalid token" in refused.value.read()


def test_every_trigger_arrives_in_order_and_survives_a_server_kill(setup):
    server, receiver = setup
    arn = subscribe(server, receiver, "deploys")
    triggers = json.dumps([{"triggerName": "all", "triggerTargetArn": arn, "triggerEvents": [
        "DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "InstanceStart", "InstanceSuccess", "InstanceFailure"]}])
    remote(server, "create-deployment-group", "--application-name", "web", "--deployment-group-name", "prod",
           "--on-premises-instance-tag-filters", "Key=app,Value=web,Type=KEY_AND_VALUE", "--trigger-configurations", triggers)
    before = len(receiver.notifications())

    # The receiver hangs on the first notification; the deployment goes on regardless.
    receiver.mode = "hang"
    held_before = len(receiver.received)
    first = deploy(server, "prod")
    wait_for(lambda: len(receiver.received) > held_before, 30)
    wait_for(lambda: status(server, first) == "Succeeded", 60)
    # Killed while a delivery is in flight (the receiver holds it), restarted on the same file and port.
    restart(server)
    receiver.mode = "ok"
    got = wait_for(lambda: [n for n in receiver.notifications()[before:] if "SUCCEEDED" in n["envelope"].get("Subject", "")], 90)
    assert got
    notifications = receiver.notifications()[before:]
    assert all(n["valid"] for n in notifications)
    ids = [n["envelope"]["MessageId"] for n in notifications]
    unique = list(dict.fromkeys(ids))
    # In publish order: deployment created and started, the instance started and succeeded, the deployment succeeded.
    statuses = []
    for message_id in unique:
        message = json.loads(next(n for n in notifications if n["envelope"]["MessageId"] == message_id)["envelope"]["Message"])
        statuses.append(message.get("status") or "instance " + message["instanceStatus"])
    assert statuses == ["CREATED", "IN_PROGRESS", "instance InProgress", "instance Succeeded", "SUCCEEDED"], statuses
    # Every duplicate (the held attempts, cut short by the timeout and the kill) carries the same id and body.
    for n in notifications:
        assert n["headers"]["webhook-id"] == n["envelope"]["MessageId"]
    held = [e for e in receiver.received if e["MessageId"] == unique[0]]
    assert len(held) >= 2 and all(e == held[0] for e in held), held
    message = json.loads(notifications[-1]["envelope"]["Message"])
    assert message["deploymentId"] == first and message["eventTriggerName"] == "all" and message["applicationName"] == "web"
    assert json.loads(message["deploymentOverview"])["Succeeded"] == 1
    # Every attempt is recorded: the delivery held across the kill shows more than one.
    listed = json.loads(remote(server, "sns", "list-deliveries", "--deployment-id", first).stdout)["Deliveries"]
    assert len(listed) == 5 and all(d["State"] == "delivered" for d in listed), listed
    first_delivery = min(listed, key=lambda d: d["DeliveryId"])
    assert len(first_delivery["Attempts"]) >= 2 and first_delivery["Attempts"][-1]["StatusCode"] == 200, first_delivery
    assert any(a.get("Error") for a in first_delivery["Attempts"][:-1]), first_delivery


def test_a_failing_receiver_is_retried_and_recorded_and_a_missing_topic_is_a_recorded_failure(setup):
    server, receiver = setup
    arn = "arn:aws:sns:local:000000000000:deploys"
    missing = "arn:aws:sns:local:000000000000:no-such-topic"
    triggers = json.dumps([
        {"triggerName": "ok", "triggerTargetArn": arn, "triggerEvents": ["DeploymentSuccess"]},
        {"triggerName": "lost", "triggerTargetArn": missing, "triggerEvents": ["DeploymentSuccess"]}])
    remote(server, "update-deployment-group", "--application-name", "web", "--current-deployment-group-name", "prod",
           "--trigger-configurations", triggers)
    receiver.mode = "fail"
    started = time.monotonic()
    deployment = deploy(server, "prod")
    wait_for(lambda: status(server, deployment) == "Succeeded", 60)
    assert time.monotonic() - started < 30

    def retried():
        listed = json.loads(remote(server, "sns", "list-deliveries", "--deployment-id", deployment).stdout)["Deliveries"]
        ok = [d for d in listed if d["Origin"] == "ok"]
        return ok and len(ok[0]["Attempts"]) >= 2 and listed
    listed = wait_for(retried, 30)
    ok = next(d for d in listed if d["Origin"] == "ok")
    assert ok["State"] == "pending" and all(a["StatusCode"] == 500 for a in ok["Attempts"]), ok
    lost = next(d for d in listed if d["Origin"] == "lost")
    assert lost["State"] == "failed" and "Topic does not exist" in lost["LastError"] and lost["Attempts"] == [], lost
    receiver.mode = "ok"
    wait_for(lambda: json.loads(remote(server, "sns", "list-deliveries", "--deployment-id", deployment, "--delivery-state", "delivered").stdout)[
        "Deliveries"], 30)
    metrics = urllib.request.urlopen(urllib.request.Request(
        server.url + "/metrics", headers={"Authorization": f"Bearer {server.keys['admin']['AccessKeyId']}:{server.keys['admin']['SecretAccessKey']}"}),
        context=receiver.context, timeout=10).read().decode()
    assert re.search(r'deployctl_notification_attempts_total\{outcome="retry"\} [1-9]', metrics), metrics
    assert re.search(r'deployctl_notification_attempts_total\{outcome="delivered"\} [1-9]', metrics)
