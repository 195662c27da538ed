#!/usr/bin/env python3
"""A fleet of agents against one `deployctl server`, in this process: by default a model of AWS's agent 1.8.1 as it
was observed against a test server (BENCHMARKS.md, "AWS's agent at fleet scale"): a TLS probe at start, then poll, hand the
command to a worker, sleep 1 s and poll again; the worker fetches the spec for every command and parses its PKCS7
envelope, acknowledges, downloads the bundle by S3 GetObject on its own connection on DownloadBundle and completes;
connections idle over 5 s are reopened. Real TLS and SigV4, each agent with its own instance key; events are no-ops.
`--agent deployctl` models deployctl's own agent instead (one connection, polls again right after a completion).

Measures an AllAtOnce deployment to all N agents and a OneAtATime deployment to 10: time from CreateDeployment to
Succeeded, the server's CPU-seconds (from /proc), requests and TLS handshakes per instance-event, the server's RSS;
then connects `--idle-agents` in all and measures the server's CPU with nothing to deploy.
Usage: `make bench-fleet-remote` or `python3 bench/fleet_remote.py [--binary PATH] [--agents N] [--idle-agents N] [--triggers]`;
with FLEET_PERF=FILE it also records `perf record -g` of the server during the AllAtOnce deployment, with
FLEET_PERF_IDLE=FILE during the idle measurement.
"""
import argparse
import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives.serialization import pkcs7

from notify import Receiver, sns_client, subscribe_confirmed
from serving import codedeploy_client, start_server, stop_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = "CodeDeployCommandService_v20141006."


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Signer:
    """SigV4 for one key (the same algorithm deployctl verifies; botocore's signer is too slow for 30,000 requests)."""

    def __init__(self, key_id, secret, region):
        self.key_id, self.secret, self.region = key_id, secret, region
        self.keys = {}

    def signing_key(self, date, service):
        cached = self.keys.get((date, service))
        if cached is None:
            k = hmac.new(("AWS4" + self.secret).encode(), date.encode(), hashlib.sha256).digest()
            for part in (self.region, service, "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            cached = self.keys[(date, service)] = k
        return cached

    def headers(self, method, host, path, body, service, extra):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        payload = hashlib.sha256(body).hexdigest()
        headers = {"host": host, "x-amz-date": now, "x-amz-content-sha256": payload}
        headers.update({k.lower(): v for k, v in extra.items()})
        names = sorted(headers)
        canonical = "\n".join([method, path, "", *[f"{n}:{headers[n]}" for n in names], "", ";".join(names), payload])
        scope = f"{now[:8]}/{self.region}/{service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", now, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac.new(self.signing_key(now[:8], service), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={self.key_id}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
        return headers


class Connection:
    """One keep-alive HTTPS connection as the Ruby SDK's pool keeps it: reused while it is busy at most every
    `idle_timeout` seconds, reopened (a new TLS handshake) when it sat idle longer."""

    def __init__(self, agent, idle_timeout=5.0):
        self.agent, self.idle_timeout = agent, idle_timeout
        self.reader = self.writer = None
        self.last_used = 0.0

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method, path, body=b"", service="codedeploy-commands", extra=None):
        agent = self.agent
        if self.writer is not None and time.monotonic() - self.last_used > self.idle_timeout:
            self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(agent.host, agent.port, ssl=agent.context, server_hostname=agent.host)
            agent.counters["handshakes"] += 1
        headers = agent.signer.headers(method, f"{agent.host}:{agent.port}", path, body, service, extra or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"content-length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        agent.counters["requests"] += 1
        try:
            status, data = await read_response(self.reader)
        finally:
            self.last_used = time.monotonic()
        if status != 200:
            agent.counters["errors"] += 1
            raise RuntimeError(f"{agent.name}: {method} {path} -> {status} {data[:200]!r}")
        return data

    async def call(self, operation, payload):
        body = json.dumps(payload).encode()
        data = await self.request("POST", "/", body, extra={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation})
        return json.loads(data) if data else {}


async def read_response(reader):
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    data = await reader.readexactly(length) if length else b""
    return int(status_line.split()[1]), data


def der_element(data, offset):
    """(tag, start of content, end of content) of the DER element at `offset`."""
    tag, length = data[offset], data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
    return tag, offset, offset + length


def pkcs7_content(pem):
    """The attached content of a PEM PKCS#7 SignedData, read as OpenSSL::PKCS7 would, and its signer certificates
    loaded (the agent parses the envelope and its certificates on every command)."""
    if not pem.startswith("-----BEGIN PKCS7-----"):
        raise ValueError("Could not parse the PKCS7: no start line")
    der = base64.b64decode("".join(line for line in pem.splitlines() if not line.startswith("-----")))
    pkcs7.load_der_pkcs7_certificates(der)
    _, start, _ = der_element(der, 0)  # ContentInfo
    _, start, end = der_element(der, start)  # contentType OID
    _, start, _ = der_element(der, end)  # [0] EXPLICIT
    _, start, _ = der_element(der, start)  # SignedData
    _, _, end = der_element(der, start)  # version
    _, _, end = der_element(der, end)  # digestAlgorithms
    _, start, _ = der_element(der, end)  # encapContentInfo
    _, _, end = der_element(der, start)  # eContentType
    _, start, _ = der_element(der, end)  # [0] EXPLICIT
    _, start, end = der_element(der, start)  # OCTET STRING
    return json.loads(der[start:end])


class AwsAgent:
    """One host running AWS's agent 1.8.1 as observed: at start a TLS probe (`GET /`, `Connection: close`); then
    poll, hand a command to a worker, sleep `wait_between_runs` (1 s) and poll again, whether or not there was a
    command. The worker fetches the spec for every command and parses its PKCS7 envelope, acknowledges, downloads the
    bundle on DownloadBundle with one S3 GetObject on its own connection and completes. Polls and the worker use two
    command connections; connections idle over 5 s are reopened."""

    def __init__(self, name, arn, signer, host, port, context, counters, wait_between_runs=1.0):
        self.name, self.arn, self.signer = name, arn, signer
        self.host, self.port, self.context = host, port, context
        self.counters, self.wait_between_runs = counters, wait_between_runs
        self.polls, self.worker, self.s3 = Connection(self), Connection(self), Connection(self)
        self.working = set()

    async def probe(self):
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.context, server_hostname=self.host)
        self.counters["handshakes"] += 1
        writer.write(f"GET / HTTP/1.1\r\nhost: {self.host}:{self.port}\r\nuser-agent: Ruby\r\nconnection: close\r\n\r\n".encode())
        await read_response(reader)
        writer.close()

    async def run(self, stop):
        await self.probe()
        while not stop.is_set():
            try:
                answer = await self.polls.call("PollHostCommand", {"HostIdentifier": self.arn})
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, RuntimeError):
                self.polls.close()
                answer = {}
            command = answer.get("HostCommand")
            if command:
                task = asyncio.create_task(self.execute(command))
                self.working.add(task)
                task.add_done_callback(self.working.discard)
            await asyncio.sleep(self.wait_between_runs)

    async def execute(self, command):
        identifier = command["HostCommandIdentifier"]
        answer = await self.worker.call(
            "GetDeploymentSpecification", {"DeploymentExecutionId": command["DeploymentExecutionId"], "HostIdentifier": self.arn})
        spec = pkcs7_content(answer["DeploymentSpecification"]["GenericEnvelope"]["Payload"])
        noop = command["CommandName"] not in ("DownloadBundle", "Install")
        await self.worker.call("PutHostCommandAcknowledgement", {
            "HostCommandIdentifier": identifier, "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"IsCommandNoop": noop})}})
        if command["CommandName"] == "DownloadBundle":
            s3 = spec["Revision"]["S3Revision"]
            await self.s3.request("GET", f"/{s3['Bucket']}/{s3['Key']}", service="s3")
        await self.worker.call("PutHostCommandComplete", {
            "HostCommandIdentifier": identifier, "CommandStatus": "Succeeded",
            "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""})}})
        self.counters["events"] += 1


class DeployctlAgent(AwsAgent):
    """deployctl's own agent: one connection, polls again as soon as a command completes (no sleep), the spec once per
    deployment."""

    async def run(self, stop):
        specs = {}
        while not stop.is_set():
            try:
                answer = await self.polls.call("PollHostCommand", {"HostIdentifier": self.arn})
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, RuntimeError):
                self.polls.close()
                await asyncio.sleep(0.5)
                continue
            command = answer.get("HostCommand")
            if not command:
                continue
            execution = command["DeploymentExecutionId"]
            if execution not in specs:
                answer = await self.polls.call("GetDeploymentSpecification", {"DeploymentExecutionId": execution, "HostIdentifier": self.arn})
                specs[execution] = pkcs7_content(answer["DeploymentSpecification"]["GenericEnvelope"]["Payload"])
            identifier = command["HostCommandIdentifier"]
            await self.polls.call("PutHostCommandAcknowledgement", {
                "HostCommandIdentifier": identifier, "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"IsCommandNoop": True})}})
            if command["CommandName"] == "DownloadBundle":
                s3 = specs[execution]["Revision"]["S3Revision"]
                await self.polls.request("GET", f"/{s3['Bucket']}/{s3['Key']}", service="s3")
            await self.polls.call("PutHostCommandComplete", {
                "HostCommandIdentifier": identifier, "CommandStatus": "Succeeded",
                "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""})}})
            self.counters["events"] += 1


class Admin:
    """The operator's side, over the same wire: registers instances with their keys (`Deployctl_20261130.RegisterInstance`,
    what `deployctl register --endpoint-url` calls) on a few keep-alive connections."""

    def __init__(self, key, port, context, connections=8):
        self.counters = {"handshakes": 0, "requests": 0, "errors": 0}
        self.name, self.host, self.port, self.context = "admin", "127.0.0.1", port, context
        self.signer = Signer(key["AccessKeyId"], key["SecretAccessKey"], "local")
        self.pool = [Connection(self, idle_timeout=3600) for _ in range(connections)]

    async def register(self, names, tags):
        """{name: (arn, Signer)} for every name, each registered with `tags(name)`."""
        queue, keys = list(names), {}

        async def worker(connection):
            while queue:
                name = queue.pop()
                body = json.dumps({"instanceName": name, "tags": tags(name)}).encode()
                answer = json.loads(await connection.request("POST", "/", body, service="codedeploy", extra={
                    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Deployctl_20261130.RegisterInstance"}))
                keys[name] = (answer["IamUserArn"], Signer(answer["AccessKeyId"], answer["SecretAccessKey"], "local"))

        await asyncio.gather(*(worker(c) for c in self.pool))
        for connection in self.pool:
            connection.close()
        return keys


async def start_agents(kind, keys, port, context, counters, stop, per_second):
    """Starts one agent per key, `per_second` a second (a fleet's agents do not all start in the same millisecond)."""
    agents, tasks = [], []
    for i, (name, (arn, signer)) in enumerate(keys.items()):
        agent = kind(name, arn, signer, "127.0.0.1", port, context, counters)
        agents.append(agent)
        tasks.append(asyncio.create_task(agent.run(stop)))
        if i % 50 == 49:
            await asyncio.sleep(50 / per_second)
    return agents, tasks


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--agents", type=int, default=1000, help="agents that take part in the deployments (default 1000)")
    parser.add_argument("--one-at-a-time", type=int, default=10,
                        help="instances of the OneAtATime deployment (default 10: AWS's agent takes about 7 s each)")
    parser.add_argument("--agent", choices=("aws", "deployctl"), default="aws",
                        help="model AWS's agent 1.8.1 (default) or deployctl's own agent")
    parser.add_argument("--idle-agents", type=int, default=10000,
                        help="after the deployments, connect this many agents in all and measure the server idle (0: skip)")
    parser.add_argument("--idle-seconds", type=float,
                        help="how long the idle fleet is measured (default: two poll cycles, 2 x (hold + 1) s, after one cycle to settle)")
    parser.add_argument("--poll-hold", type=int, default=45,
                        help="the server's --poll-hold (seconds; default 45, the server's default; given explicitly so that an older binary "
                             "with another default is measured at the same hold)")
    parser.add_argument("--triggers", action="store_true",
                        help="give both groups triggers on every deployment and instance event, to a topic a local receiver subscribes to")
    args = parser.parse_args()
    kind = AwsAgent if args.agent == "aws" else DeployctlAgent

    directory = tempfile.mkdtemp(prefix="deployctl-bench-fleet-")
    state = os.path.join(directory, "state.db")
    if args.idle_seconds is None:
        args.idle_seconds = 2 * (args.poll_hold + 1)
    server, url, ca, admin = start_server(args.binary, state, extra=("--poll-hold", str(args.poll_hold)))
    receiver = None
    try:
        port = int(url.rsplit(":", 1)[1])
        client = codedeploy_client(url, ca, admin)
        role = "arn:aws:iam::000000000000:role/bench"
        client.create_application(applicationName="fleet")
        client.create_deployment_group(applicationName="fleet", deploymentGroupName="all", serviceRoleArn=role,
                                       deploymentConfigName="CodeDeployDefault.AllAtOnce",
                                       onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": "all", "Type": "KEY_AND_VALUE"}])
        client.create_deployment_group(applicationName="fleet", deploymentGroupName="fifty", serviceRoleArn=role,
                                       deploymentConfigName="CodeDeployDefault.OneAtATime",
                                       onPremisesInstanceTagFilters=[{"Key": "subset", "Value": "yes", "Type": "KEY_AND_VALUE"}])
        if args.triggers:
            receiver = Receiver(directory)
            receiver.start()
            sns = sns_client(url, ca, admin)
            topic = sns.create_topic(Name="fleet")["TopicArn"]
            subscribe_confirmed(sns, state, topic, receiver.url)
            events = ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop", "InstanceStart", "InstanceSuccess",
                      "InstanceFailure"]
            for group in ("all", "fifty"):
                client.update_deployment_group(applicationName="fleet", currentDeploymentGroupName=group,
                                               triggerConfigurations=[{"triggerName": "fleet", "triggerTargetArn": topic, "triggerEvents": events}])
        bundle = os.path.join(directory, "bundle")
        os.makedirs(bundle)
        open(os.path.join(bundle, "appspec.yml"), "w").write("version: 0.0\nos: linux\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": admin["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": admin["SecretAccessKey"], "AWS_CA_BUNDLE": ca,
                    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
        subprocess.run([args.binary, "push", "--application-name", "fleet", "--s3-location", "s3://releases/fleet.zip", "--source", bundle,
                        "--endpoint-url", url], check=True, capture_output=True, env=env)

        async def fleet():
            context = ssl.create_default_context(cafile=ca)
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            names = [f"host-{i:05d}" for i in range(args.agents)]
            subset = set(names[:args.one_at_a_time])
            keys = await Admin(admin, port, context).register(
                names, lambda n: [{"Key": "fleet", "Value": "all"}] + ([{"Key": "subset", "Value": "yes"}] if n in subset else []))
            keys = dict(sorted(keys.items()))
            print(f"registered {args.agents} instances, each with its own key, in {time.perf_counter() - started:.1f} s")
            counters = {"requests": 0, "errors": 0, "events": 0, "handshakes": 0}
            stop = asyncio.Event()
            agents, tasks = await start_agents(kind, keys, port, context, counters, stop, per_second=500)
            await asyncio.sleep(3)  # every agent connected, its poll held
            # The fleet's cost with nothing to deploy (held polls, their renewals), to separate from the deployments'.
            idle_before, idle_t0 = cpu_seconds(server.pid), time.perf_counter()
            await asyncio.sleep(5)
            idle_cpu_rate = (cpu_seconds(server.pid) - idle_before) / (time.perf_counter() - idle_t0)
            results = []
            for group, expected in (("all", args.agents), ("fifty", args.one_at_a_time)):
                counters.update(requests=0, events=0, handshakes=0)
                cpu_before, own_before = cpu_seconds(server.pid), cpu_seconds(os.getpid())
                if os.environ.get("FLEET_PERF") and group == "all":
                    subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(server.pid), "-o", os.environ["FLEET_PERF"], "--", "sleep", "15"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                t0 = time.perf_counter()
                deployment = await loop.run_in_executor(None, lambda: client.create_deployment(
                    applicationName="fleet", deploymentGroupName=group,
                    revision={"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "fleet.zip", "bundleType": "zip"}})["deploymentId"])
                status = "Created"
                while status not in ("Succeeded", "Failed", "Stopped") and time.perf_counter() - t0 < 300:
                    await asyncio.sleep(0.2)
                    status = (await loop.run_in_executor(None, lambda: client.get_deployment(deploymentId=deployment)))["deploymentInfo"]["status"]
                elapsed = time.perf_counter() - t0
                cpu = cpu_seconds(server.pid) - cpu_before
                own = cpu_seconds(os.getpid()) - own_before
                results.append((group, expected, status, elapsed, cpu, own, counters["events"], counters["requests"], counters["handshakes"],
                                rss_mib(server.pid)))
            idle = None
            if args.idle_agents > args.agents:
                more = [f"host-{i:05d}" for i in range(args.agents, args.idle_agents)]
                extra = await Admin(admin, port, context).register(more, lambda n: [{"Key": "fleet", "Value": "idle"}])
                more_agents, more_tasks = await start_agents(kind, dict(sorted(extra.items())), port, context, counters, stop, per_second=500)
                agents += more_agents
                tasks += more_tasks
                # Every agent past its probe and first poll, and every first hold renewed: the steady state, where each
                # agent polls once per hold + 1 s.
                await asyncio.sleep(args.poll_hold + 5)
                counters.update(requests=0)
                if os.environ.get("FLEET_PERF_IDLE"):
                    subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(server.pid), "-o", os.environ["FLEET_PERF_IDLE"], "--", "sleep",
                                      str(args.idle_seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                before, t0 = cpu_seconds(server.pid), time.perf_counter()
                await asyncio.sleep(args.idle_seconds)
                seconds = time.perf_counter() - t0
                idle = ((cpu_seconds(server.pid) - before) / seconds, counters["requests"] / seconds, rss_mib(server.pid))
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return results, counters["errors"], idle_cpu_rate, idle

        idle_rss = rss_mib(server.pid)
        results, errors, idle_cpu_rate, idle = asyncio.run(fleet())
        print()
        print(f"agent model: {'AWS agent 1.8.1' if args.agent == 'aws' else 'deployctl agent'}")
        print(f"{'deployment':<26} {'status':<10} {'time':>7} {'server CPU':>10} {'agents CPU':>10} {'CPU/event':>9} {'req/event':>9} {'handshakes':>10} {'RSS':>9}")
        for group, expected, status, elapsed, cpu, own, events, requests, handshakes, rss in results:
            label = f"AllAtOnce to {expected}" if group == "all" else f"OneAtATime to {expected}"
            per_event = cpu / events * 1000 if events else float("nan")
            print(f"{label:<26} {status:<10} {elapsed:>6.1f}s {cpu:>9.2f}s {own:>9.2f}s {per_event:>7.2f}ms {requests / max(events, 1):>9.2f} "
                  f"{handshakes:>10} {rss:>7.1f}MiB")
        print(f"  server CPU with the {args.agents} agents connected and nothing to deploy: {idle_cpu_rate * 100:.1f} % of a core")
        if idle:
            print(f"  server CPU with {args.idle_agents} agents connected and nothing to deploy: {idle[0] * 100:.1f} % of a core "
                  f"({idle[1]:.0f} requests/s, RSS {idle[2]:.1f} MiB)")
        if receiver:
            print(f"  triggers: {receiver.state()[0]} notifications delivered to the receiver by the end")
        print(f"  (agents in one process, this host's 2 cores shared; events = instance-events the agents completed; "
              f"server RSS before the agents connected: {idle_rss:.1f} MiB; non-200 answers: {errors})")
    finally:
        if receiver:
            receiver.stop()
        code = stop_server(server)
        subprocess.run(["rm", "-rf", directory])
        if code != 0:
            sys.exit(f"deployctl server exited {code} after SIGTERM")


if __name__ == "__main__":
    main()
