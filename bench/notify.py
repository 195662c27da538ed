#!/usr/bin/env python3
"""Triggers' cost and delivery throughput (issue 24), against one `deployctl server` on loopback.

1. The outbox's cost on create-deployment: groups whose triggers fire on DeploymentStart (a topic with a confirmed
   subscription) against groups without, in the same server, rounds alternated: the median latency of a signed
   CreateDeployment (boto3, one connection), each to a group of its own (one active deployment per group).
2. Delivery throughput to local receivers (Python's ThreadingHTTPServer, in a process of their own): N messages
   published while the receivers are away are delivered when they come back, to 1 and to 4 subscriptions; the
   baseline is the same receiver fed directly by one Python client POSTing the same bodies back to back.

Usage: `make bench-notify` or `python3 bench/notify.py [--binary PATH] [--deployments N] [--messages N]`.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import sqlite3
import tempfile
import time

import boto3
import botocore.config

from serving import codedeploy_client, start_server, stop_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECEIVER = r'''
import http.server, sys, threading, time
count = 0
first = last = None
lock = threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count, first, last
        self.rfile.read(int(self.headers["Content-Length"]))
        with lock:
            count += 1
            now = time.monotonic()
            first = first or now
            last = now
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        body = f"{count} {first or 0} {last or 0}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
server.serve_forever()
'''


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self, directory, port=None):
        self.port = port or free_port()
        self.script = os.path.join(directory, "receiver.py")
        open(self.script, "w").write(RECEIVER)
        self.process = None

    def start(self):
        self.process = subprocess.Popen([sys.executable, self.script, str(self.port)], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def state(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        connection.request("GET", "/")
        count, first, last = connection.getresponse().read().decode().split()
        return int(count), float(first), float(last)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"


def sns_client(url, ca, key):
    return boto3.session.Session().client(
        "sns", endpoint_url=url, region_name="local", verify=ca, aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"], config=botocore.config.Config(retries={"max_attempts": 1}))


def wait_until(what, seconds=120):
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.05)


def subscribe_confirmed(sns, state, topic, endpoint):
    """Subscribes `endpoint` and confirms it. The bench's receivers do not confirm: the Token is read from the state
    file (read-only, on this host) and given to ConfirmSubscription, as a receiver would give the one it got."""
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint)
    token = None
    deadline = time.monotonic() + 30
    while token is None and time.monotonic() < deadline:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
            row = db.execute("SELECT token FROM subscriptions WHERE endpoint = ? AND topic_arn = ?", (endpoint, topic)).fetchone()
        token = row[0] if row else None
        time.sleep(0.05)
    sns.confirm_subscription(TopicArn=topic, Token=token)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--deployments", type=int, default=300, help="create-deployments per kind (default 300)")
    parser.add_argument("--messages", type=int, default=2000, help="messages delivered per throughput run (default 2000)")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="deployctl-bench-notify-")
    state = os.path.join(directory, "state.db")
    server, url, ca, admin = start_server(args.binary, state, extra=("--delivery-first-retry", "1"))
    receivers = []
    try:
        codedeploy = codedeploy_client(url, ca, admin)
        sns = sns_client(url, ca, admin)

        def subscribed(topic, receiver):
            subscribe_confirmed(sns, state, topic, receiver.url)

        # 1. create-deployment with and without triggers.
        receiver = Receiver(directory)
        receiver.start()
        receivers.append(receiver)
        topic = sns.create_topic(Name="deploys")["TopicArn"]
        subscribed(topic, receiver)
        codedeploy.create_application(applicationName="bench")
        codedeploy.register_on_premises_instance(instanceName="h1", iamUserArn="arn:aws:iam::000000000000:user/h1")
        codedeploy.add_tags_to_on_premises_instances(instanceNames=["h1"], tags=[{"Key": "k", "Value": "v"}])
        filters = [{"Key": "k", "Value": "v", "Type": "KEY_AND_VALUE"}]
        role = "arn:aws:iam::000000000000:role/bench"
        triggers = [{"triggerName": "all", "triggerTargetArn": topic,
                     "triggerEvents": ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop"]}]
        for i in range(args.deployments):
            codedeploy.create_deployment_group(applicationName="bench", deploymentGroupName=f"plain-{i}", serviceRoleArn=role,
                                               onPremisesInstanceTagFilters=filters)
            codedeploy.create_deployment_group(applicationName="bench", deploymentGroupName=f"triggers-{i}", serviceRoleArn=role,
                                               onPremisesInstanceTagFilters=filters, triggerConfigurations=triggers)
        revision = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k.zip", "bundleType": "zip"}}
        times = {"plain": [], "triggers": []}
        for round_start in range(0, args.deployments, 50):
            for kind in ("plain", "triggers") if round_start % 100 == 0 else ("triggers", "plain"):
                for i in range(round_start, min(round_start + 50, args.deployments)):
                    started = time.perf_counter()
                    codedeploy.create_deployment(applicationName="bench", deploymentGroupName=f"{kind}-{i}", revision=revision)
                    times[kind].append((time.perf_counter() - started) * 1000)
        plain, with_triggers = statistics.median(times["plain"]), statistics.median(times["triggers"])
        print(f"create-deployment, median of {args.deployments} each (one connection, TLS, SigV4):")
        print(f"  without triggers   {plain:6.2f} ms")
        print(f"  with triggers      {with_triggers:6.2f} ms   ({(with_triggers / plain - 1) * 100:+.1f} %)")
        wait_until(lambda: receiver.state()[0] >= args.deployments)

        # 2. Throughput: messages queued while the receivers are away, delivered when they come back.
        print(f"\ndelivery of {args.messages} messages queued while the receivers were away:")
        body = json.dumps({"status": "SUCCEEDED", "deploymentId": "d-BENCH", "padding": "x" * 400})
        for count in (1, 4):
            topic = sns.create_topic(Name=f"throughput-{count}")["TopicArn"]
            group = [Receiver(directory) for _ in range(count)]
            for r in group:
                r.start()
                receivers.append(r)
                subscribed(topic, r)
            for r in group:
                r.stop()
            for _ in range(args.messages):
                sns.publish(TopicArn=topic, Message=body, Subject="bench")
            for r in group:
                r.start()
            started = time.monotonic()
            wait_until(lambda: all(r.state()[0] >= args.messages for r in group), 300)
            elapsed = time.monotonic() - started
            total = args.messages * count
            print(f"  to {count} subscription(s): {total} deliveries in {elapsed:.2f} s = {total / elapsed:,.0f}/s")
        # Baseline: one client POSTing the same body straight to a receiver, back to back on one connection.
        direct = Receiver(directory)
        direct.start()
        receivers.append(direct)
        connection = http.client.HTTPConnection("127.0.0.1", direct.port)
        started = time.monotonic()
        for _ in range(args.messages):
            connection.request("POST", "/hook", body=body, headers={"Content-Type": "text/plain"})
            connection.getresponse().read()
        elapsed = time.monotonic() - started
        print(f"  baseline, one Python client straight to one receiver: {args.messages / elapsed:,.0f}/s")
        print("  (deliveries to one subscription go one after another, in order; subscriptions at once)")
    finally:
        for r in receivers:
            r.stop()
        code = stop_server(server)
        subprocess.run(["rm", "-rf", directory])
        if code != 0:
            sys.exit(f"deployctl server exited {code} after SIGTERM")


if __name__ == "__main__":
    main()
