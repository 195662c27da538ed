"""The example receiver (Scripts/slack-receiver.py) that forwards CodeDeploy trigger notifications to a Slack-style
incoming webhook: it confirms an SNS subscription, checks Standard Webhooks signatures, forwards each notification
once, as one line. A fake Slack (an HTTP server in the test) records what it gets; the receiver runs as a real
process, stopped by its PID."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Scripts", "slack-receiver.py")
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()

# A real SUCCEEDED message as AWS sends it (reference/triggers-and-alarms.md, 1.3).
MESSAGE = json.dumps({
    "region": "eu-west-2", "accountId": "677183322136", "eventTriggerName": "send-deploy-events",
    "applicationName": "temporary-status", "deploymentId": "d-RollbackDeploy", "deploymentGroupName": "temporary-status-deployment",
    "createTime": "Fri Oct 14 08:46:19 UTC 2022", "completeTime": "Fri Oct 14 08:46:22 UTC 2022",
    "deploymentOverview": json.dumps({"Succeeded": 1, "Failed": 0, "Skipped": 0, "InProgress": 0, "Pending": 0}, separators=(",", ":")),
    "status": "SUCCEEDED",
    "rollbackInformation": json.dumps({"RollbackMessage": "Deployment d-RollbackDeploy is triggered to roll back deployment d-MainDeployment.",
                                       "RollbackTriggeringDeploymentId": "d-MainDeployment"}, separators=(",", ":")),
}, separators=(",", ":"))


class FakeSlack(http.server.ThreadingHTTPServer):
    """Records the JSON bodies posted to it, and GETs (the subscription confirmation)."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeSlackHandler)
        self.posts = []
        self.gets = []
        threading.Thread(target=self.serve_forever, daemon=True).start()


class FakeSlackHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.server.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_GET(self):
        self.server.gets.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(tmp_path):
    slack = FakeSlack()
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    process = subprocess.Popen([sys.executable, SCRIPT, "--listen", "127.0.0.1:0", "--secret-file", str(secret_file),
                                "--slack-url", f"http://127.0.0.1:{slack.server_address[1]}/services/T0/B0/x"],
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    port = int(line.rsplit(":", 1)[1])
    yield f"http://127.0.0.1:{port}/", slack
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    slack.shutdown()


def post(url, envelope, headers=None):
    body = json.dumps(envelope).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "text/plain; charset=UTF-8", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode().strip()


def signed(envelope, webhook_id, secret=SECRET, stamp=None):
    stamp = str(int(stamp if stamp is not None else time.time()))
    body = json.dumps(envelope).encode()
    key = base64.b64decode(secret[len("whsec_"):])
    signature = base64.b64encode(hmac.new(key, f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"webhook-id": webhook_id, "webhook-timestamp": stamp, "webhook-signature": f"v1,{signature}",
            "x-amz-sns-message-type": envelope["Type"]}


def notification(message_id):
    return {"Type": "Notification", "MessageId": message_id, "TopicArn": "arn:aws:sns:us-east-1:000000000000:deploys",
            "Subject": "SUCCEEDED: AWS CodeDeploy d-RollbackDeploy in eu-west-2 to temporary-status", "Message": MESSAGE,
            "Timestamp": "2022-10-14T08:46:22.411Z"}


def test_it_confirms_checks_signatures_and_forwards_each_notification_once(receiver):
    url, slack = receiver
    slack_base = f"http://127.0.0.1:{slack.server_address[1]}"
    status, _ = post(url, {"Type": "SubscriptionConfirmation", "TopicArn": "arn:aws:sns:us-east-1:000000000000:deploys",
                           "Token": "t-1", "SubscribeURL": f"{slack_base}/confirm?Token=t-1"})
    assert status == 200 and slack.gets == ["/confirm?Token=t-1"]

    envelope = notification("m-1")
    assert post(url, envelope, signed(envelope, "m-1")) == (200, "forwarded")
    assert len(slack.posts) == 1
    text = slack.posts[0]["text"]
    assert text.startswith("*SUCCEEDED* deployment d-RollbackDeploy of temporary-status/temporary-status-deployment")
    assert "Succeeded 1" in text and "triggered to roll back deployment d-MainDeployment" in text

    # The same delivery again (a retry): acknowledged, not forwarded twice.
    assert post(url, envelope, signed(envelope, "m-1")) == (200, "duplicate")
    assert len(slack.posts) == 1

    # Unsigned, signed with another secret, or too old: refused, nothing forwarded.
    other = "whsec_" + base64.b64encode(b"another secret, 32 bytes long!!!").decode()
    for headers, reason in (({"x-amz-sns-message-type": "Notification"}, "missing webhook-id"),
                            (signed(notification("m-2"), "m-2", secret=other), "no signature matches"),
                            (signed(notification("m-3"), "m-3", stamp=time.time() - 3600), "more than 5 minutes away")):
        status, answer = post(url, notification(headers.get("webhook-id", "m-0")), headers)
        assert (status, reason in answer) == (401, True), (status, answer)
    assert len(slack.posts) == 1
