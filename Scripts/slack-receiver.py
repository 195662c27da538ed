#!/usr/bin/env python3
"""An example receiver for deployctl's trigger notifications that forwards them to a Slack-style incoming webhook.

It speaks what an SNS HTTP(S) subscription receives, so it works for CodeDeploy triggers from AWS too:
- `SubscriptionConfirmation`: it confirms by fetching `SubscribeURL`;
- `Notification`: `Message` is CodeDeploy's trigger message (deployment or instance), turned into one Slack line and
  POSTed as `{"text": ...}` to `--slack-url`.
With `--secret-file`, a notification must carry a valid Standard Webhooks signature (`webhook-id`,
`webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`, timestamp
within 5 minutes) or it is refused with 401. A notification whose id (`webhook-id`, else `MessageId`) was already
forwarded is acknowledged and not forwarded again: deliveries are at least once.

Usage: python3 Scripts/slack-receiver.py --listen 127.0.0.1:8088 --slack-url https://hooks.slack.com/services/... \\
           [--secret-file /etc/deployctl/webhook-secret] [--ca-file /var/lib/deployctl/tls/ca.pem]

Standard library only; an example to adapt, not part of deployctl.
"""
import argparse
import base64
import collections
import hashlib
import hmac
import http.server
import json
import ssl
import sys
import threading
import time
import urllib.request

MAX_BODY = 256 * 1024
TOLERANCE = 300


def verify(secret, headers, body):
    """Whether the Standard Webhooks signature headers are valid for `body`; answers (ok, reason)."""
    webhook_id, stamp, signatures = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not webhook_id or not stamp or not signatures:
        return False, "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        if abs(time.time() - int(stamp)) > TOLERANCE:
            return False, "webhook-timestamp is more than 5 minutes away"
    except ValueError:
        return False, "webhook-timestamp is not a number"
    key = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        key = base64.b64decode(key, validate=True)
    except ValueError:
        key = key.encode()
    signed = f"{webhook_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True, ""
    return False, "no signature matches"


def slack_text(message):
    """One Slack line for a CodeDeploy trigger message (deployment or instance)."""
    if "instanceId" in message:
        return (f"Deployment {message.get('deploymentId')}: instance {message.get('instanceId')} "
                f"{message.get('instanceStatus')}")
    text = (f"*{message.get('status', '?')}* deployment {message.get('deploymentId')} of "
            f"{message.get('applicationName')}/{message.get('deploymentGroupName')} ({message.get('eventTriggerName')})")
    overview = message.get("deploymentOverview")
    if overview:
        counts = json.loads(overview)
        text += " — " + ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    error = message.get("errorInformation")
    if error:
        details = json.loads(error)
        if details:
            text += f"\n{details.get('ErrorCode')}: {details.get('ErrorMessage')}"
    rollback = message.get("rollbackInformation")
    if rollback and json.loads(rollback):
        text += f"\n{json.loads(rollback).get('RollbackMessage', '')}"
    return text


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self, address, slack_url, secret):
        super().__init__(address, Handler)
        self.slack_url = slack_url
        self.secret = secret
        self.context = None
        self.seen = collections.OrderedDict()
        self.lock = threading.Lock()

    def first_time(self, key):
        with self.lock:
            if key in self.seen:
                return False
            self.seen[key] = True
            while len(self.seen) > 10_000:
                self.seen.popitem(last=False)
            return True


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self.answer(413, "too large")
        body = self.rfile.read(length)
        try:
            envelope = json.loads(body)
        except ValueError:
            return self.answer(400, "not JSON")
        kind = envelope.get("Type") or self.headers.get("x-amz-sns-message-type")
        if kind == "SubscriptionConfirmation":
            url = envelope.get("SubscribeURL", "")
            if not url.startswith(("http://", "https://")):
                return self.answer(400, "no SubscribeURL")
            urllib.request.urlopen(url, timeout=10, context=self.server.context).read()
            print(f"confirmed the subscription to {envelope.get('TopicArn')}", file=sys.stderr)
            return self.answer(200, "confirmed")
        if kind != "Notification":
            return self.answer(200, "ignored")
        if self.server.secret:
            ok, reason = verify(self.server.secret, {k.lower(): v for k, v in self.headers.items()}, body)
            if not ok:
                return self.answer(401, reason)
        key = self.headers.get("webhook-id") or envelope.get("MessageId") or hashlib.sha256(body).hexdigest()
        if not self.server.first_time(key):
            return self.answer(200, "duplicate")
        try:
            message = json.loads(envelope.get("Message", "{}"))
        except ValueError:
            message = {"status": "?", "deploymentId": envelope.get("Subject")}
        request = urllib.request.Request(self.server.slack_url, data=json.dumps({"text": slack_text(message)}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=10).read()
        except OSError as error:
            with self.server.lock:
                self.server.seen.pop(key, None)  # not forwarded: let the retry try again
            return self.answer(502, f"Slack refused: {error}")
        return self.answer(200, "forwarded")

    def answer(self, status, text):
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8088", help="HOST:PORT to listen on")
    parser.add_argument("--slack-url", required=True, help="the incoming webhook's URL")
    parser.add_argument("--secret-file", help="the webhook secret (whsec_...); notifications must be signed with it")
    parser.add_argument("--ca-file", help="a CA to trust when confirming a subscription (deployctl server's tls/ca.pem)")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    secret = open(args.secret_file).read().strip() if args.secret_file else None
    server = Receiver((host, int(port)), args.slack_url, secret)
    server.context = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else None
    print(f"slack-receiver: listening on {host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
