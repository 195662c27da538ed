"""Triggers on a state file, with no server (issue 24): `deployctl sns` makes the topic and subscription, the
confirmation goes out with `deployctl sns deliver` and is confirmed with its Token, and a deployment followed with
`--wait` (its agent running `deployctl agent run` on the same file) delivers every trigger before the command exits.
"""
import base64
import hashlib
import hmac
import http.server
import importlib.util
import json
import os
import signal
import subprocess
import threading

_here = os.path.dirname(os.path.abspath(__file__))
_support_spec = importlib.util.spec_from_file_location("e2e_support", os.path.join(os.path.dirname(_here), "e2e_support.py"))
_support = importlib.util.module_from_spec(_support_spec)
_support_spec.loader.exec_module(_support)
_server = _support.server_conftest()
BINARY, deployctl = _server.BINARY, _server.deployctl


class Receiver:
    def __init__(self):
        self.got = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_state_file_delivers_triggers_from_the_waiting_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEPLOYCTL_"))}
    env["DEPLOYCTL_STATE"] = str(tmp_path / "state.db")

    def cli(*args, check=True):
        return deployctl(*args, env=env, check=check)

    receiver = Receiver()
    try:
        topic = json.loads(cli("sns", "create-topic", "--name", "deploys").stdout)["TopicArn"]
        assert topic == "arn:aws:sns:local:000000000000:deploys"
        made = json.loads(cli("sns", "subscribe", "--topic-arn", topic, "--protocol", "http", "--notification-endpoint", receiver.url).stdout)
        assert made["SubscriptionArn"] == "pending confirmation" and made["SigningSecret"].startswith("whsec_")
        # A second subscribe of the same endpoint does not show the secret again.
        again = json.loads(cli("sns", "subscribe", "--topic-arn", topic, "--protocol", "http", "--notification-endpoint", receiver.url).stdout)
        assert "SigningSecret" not in again
        assert json.loads(cli("sns", "deliver").stdout) == {"Attempted": 1, "Delivered": 1}
        confirmation = json.loads(receiver.got[0][1])
        assert confirmation["Type"] == "SubscriptionConfirmation" and "SubscribeURL" not in confirmation
        wrong = cli("sns", "confirm-subscription", "--topic-arn", topic, "--token", "0" * 64, check=False)
        assert wrong.returncode == 254 and "InvalidParameter" in wrong.stderr and "Invalid token" in wrong.stderr, wrong.stderr
        confirmed = json.loads(cli("sns", "confirm-subscription", "--topic-arn", topic, "--token", confirmation["Token"]).stdout)
        assert confirmed["SubscriptionArn"].startswith(topic + ":")

        cli("create-application", "--application-name", "web")
        cli("register-on-premises-instance", "--instance-name", "h1", "--iam-user-arn", "arn:aws:iam::000000000000:user/h1")
        cli("add-tags-to-on-premises-instances", "--instance-names", "h1", "--tags", "Key=env,Value=prod")
        triggers = json.dumps([{"triggerName": "team", "triggerTargetArn": topic, "triggerEvents": ["DeploymentStart", "DeploymentSuccess"]}])
        cli("create-deployment-group", "--application-name", "web", "--deployment-group-name", "prod",
            "--on-premises-instance-tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE", "--trigger-configurations", triggers)
        source = tmp_path / "app"
        (source / "site").mkdir(parents=True)
        (source / "site" / "index.html").write_text("v1\n")
        (source / "appspec.yml").write_text("version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/app\n")
        cli("push", "--application-name", "web", "--s3-location", "s3://releases/app.zip", "--source", str(source))
        log = open(tmp_path / "agent.log", "w")
        agent = subprocess.Popen([BINARY, "agent", "run", "--instance-name", "h1", "--agent-root", str(tmp_path / "agent"),
                                  "--install-root", str(tmp_path / "host"), "--poll-interval", "0.2"], stderr=log, env=env)
        try:
            deployment = json.loads(cli("create-deployment", "--application-name", "web", "--deployment-group-name", "prod",
                                        "--s3-location", "bucket=releases,key=app.zip,bundleType=zip", "--wait", "--timeout", "60").stdout)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=60)
            log.close()
        # Everything is out by the time --wait returns: created, started, succeeded, each once and in order.
        notifications = [json.loads(body) for _, body in receiver.got[1:]]
        statuses = [json.loads(n["Message"])["status"] for n in notifications]
        assert statuses == ["CREATED", "IN_PROGRESS", "SUCCEEDED"], statuses
        assert all(json.loads(n["Message"])["deploymentId"] == deployment["deploymentId"] for n in notifications)
        key = base64.b64decode(made["SigningSecret"][len("whsec_"):])
        for headers, body in receiver.got[1:]:
            signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
            assert headers["webhook-signature"] == "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        listed = json.loads(cli("sns", "list-deliveries", "--deployment-id", deployment["deploymentId"], "--output", "json").stdout)["Deliveries"]
        assert [d["State"] for d in listed] == ["delivered"] * 3 and all(len(d["Attempts"]) == 1 for d in listed)
        # Bad input is named.
        bad = cli("sns", "list-deliveries", "--delivery-state", "lost", check=False)
        assert bad.returncode == 252 and "--delivery-state must be pending, delivered or failed" in bad.stderr
        remote_only = cli("sns", "deliver", "--endpoint-url", "https://127.0.0.1:9", check=False)
        assert remote_only.returncode == 252 and "works on the state file" in remote_only.stderr, remote_only.stderr
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
