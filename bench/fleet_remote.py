#!/usr/bin/env python3
"""A fleet of remote agents against one `deployctl server`: N simulated agents in this process, each with its own
TLS connection, speaking CodeDeploy's command protocol with real SigV4 (PollHostCommand held by the server,
GetDeploymentSpecification, the bundle by S3 GetObject on DownloadBundle, PutHostCommandAcknowledgement,
PutHostCommandComplete) and running no-op events.

Measures an AllAtOnce deployment to all N and a OneAtATime deployment to 50: time from CreateDeployment to
Succeeded, the server's CPU-seconds (from /proc) and requests per instance-event, and the server's RSS.
Usage: `make bench-fleet-remote` or `python3 bench/fleet_remote.py [--binary PATH] [--agents N]`; with
FLEET_PERF=FILE it also records `perf record -g` of the server during the AllAtOnce deployment.
"""
import argparse
import asyncio
import concurrent.futures
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


class Agent:
    """One simulated host."""

    def __init__(self, name, arn, signer, host, port, context, counters):
        self.name, self.arn, self.signer = name, arn, signer
        self.host, self.port, self.context = host, port, context
        self.counters = counters
        self.reader = self.writer = None
        self.specs = {}

    async def request(self, method, path, body=b"", service="codedeploy-commands", extra=None):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, ssl=self.context, server_hostname=self.host)
        headers = self.signer.headers(method, f"{self.host}:{self.port}", path, body, service, extra or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"content-length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        self.counters["requests"] += 1
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
        data = await self.reader.readexactly(length) if length else b""
        status = int(status_line.split()[1])
        if status != 200:
            self.counters["errors"] += 1
            raise RuntimeError(f"{self.name}: {method} {path} -> {status} {data[:200]!r}")
        return data

    async def call(self, operation, payload):
        body = json.dumps(payload).encode()
        data = await self.request("POST", "/", body, extra={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation})
        return json.loads(data) if data else {}

    async def run(self, stop):
        while not stop.is_set():
            try:
                answer = await self.call("PollHostCommand", {"HostIdentifier": self.arn})
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, RuntimeError):
                self.writer = None
                await asyncio.sleep(0.5)
                continue
            command = answer.get("HostCommand")
            if not command:
                continue
            execution = command["DeploymentExecutionId"]
            if execution not in self.specs:
                self.specs[execution] = await self.call(
                    "GetDeploymentSpecification", {"DeploymentExecutionId": execution, "HostIdentifier": self.arn})
            identifier = command["HostCommandIdentifier"]
            await self.call("PutHostCommandAcknowledgement", {
                "HostCommandIdentifier": identifier, "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"IsCommandNoop": True})}})
            if command["CommandName"] == "DownloadBundle":
                await self.request("GET", "/releases/fleet.zip", service="s3")
            await self.call("PutHostCommandComplete", {
                "HostCommandIdentifier": identifier, "CommandStatus": "Succeeded",
                "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"error_code": 0, "script_name": "", "message": "Succeeded: ", "log": ""})}})
            self.counters["events"] += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--one-at-a-time", type=int, default=50)
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="deployctl-bench-fleet-")
    state = os.path.join(directory, "state.db")

    def cli(*command):
        return subprocess.run([args.binary, *command, "--state", state], capture_output=True, text=True, check=True).stdout

    server, url, ca, admin = start_server(args.binary, state)
    try:
        port = int(url.rsplit(":", 1)[1])
        client = codedeploy_client(url, ca, admin)
        started = time.perf_counter()
        names = [f"host-{i:04d}" for i in range(args.agents)]
        arns = {n: f"arn:aws:iam::000000000000:user/deployctl/{n}" for n in names}
        for n in names:
            client.register_on_premises_instance(instanceName=n, iamUserArn=arns[n])
        for i in range(0, len(names), 10):
            client.add_tags_to_on_premises_instances(instanceNames=names[i:i + 10], tags=[{"Key": "fleet", "Value": "all"}])
        small = names[:args.one_at_a_time]
        for i in range(0, len(small), 10):
            client.add_tags_to_on_premises_instances(instanceNames=small[i:i + 10], tags=[{"Key": "subset", "Value": "yes"}])

        def key(name):
            return json.loads(cli("create-access-key", "--user-name", name, "--role", "instance"))["AccessKey"]

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            keys = dict(zip(names, pool.map(key, names)))
        role = "arn:aws:iam::000000000000:role/bench"
        client.create_application(applicationName="fleet")
        client.create_deployment_group(applicationName="fleet", deploymentGroupName="all", serviceRoleArn=role,
                                       deploymentConfigName="CodeDeployDefault.AllAtOnce",
                                       onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": "all", "Type": "KEY_AND_VALUE"}])
        client.create_deployment_group(applicationName="fleet", deploymentGroupName="fifty", serviceRoleArn=role,
                                       deploymentConfigName="CodeDeployDefault.OneAtATime",
                                       onPremisesInstanceTagFilters=[{"Key": "subset", "Value": "yes", "Type": "KEY_AND_VALUE"}])
        bundle = os.path.join(directory, "bundle")
        os.makedirs(bundle)
        open(os.path.join(bundle, "appspec.yml"), "w").write("version: 0.0\nos: linux\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": admin["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": admin["SecretAccessKey"], "AWS_CA_BUNDLE": ca,
                    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
        subprocess.run([args.binary, "push", "--application-name", "fleet", "--s3-location", "s3://releases/fleet.zip", "--source", bundle,
                        "--endpoint-url", url], check=True, capture_output=True, env=env)
        print(f"set up {args.agents} instances with their own keys in {time.perf_counter() - started:.1f} s")

        async def fleet():
            context = ssl.create_default_context(cafile=ca)
            counters = {"requests": 0, "errors": 0, "events": 0}
            agents = [Agent(n, arns[n], Signer(keys[n]["AccessKeyId"], keys[n]["SecretAccessKey"], "local"), "127.0.0.1", port, context, counters)
                      for n in names]
            stop = asyncio.Event()
            tasks = [asyncio.create_task(a.run(stop)) for a in agents]
            await asyncio.sleep(3)  # every agent connected, its poll held
            loop = asyncio.get_running_loop()
            # The fleet's cost with nothing to deploy (held polls, their renewals), to separate from the deployments'.
            idle_before, idle_t0 = cpu_seconds(server.pid), time.perf_counter()
            await asyncio.sleep(3)
            idle_cpu_rate = (cpu_seconds(server.pid) - idle_before) / (time.perf_counter() - idle_t0)
            results = []
            for group, expected in (("all", args.agents), ("fifty", args.one_at_a_time)):
                counters.update(requests=0, events=0)
                cpu_before = cpu_seconds(server.pid)
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
                events = counters["events"]
                results.append((group, expected, status, elapsed, cpu, events, counters["requests"], rss_mib(server.pid)))
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return results, counters["errors"], idle_cpu_rate

        idle_rss = rss_mib(server.pid)
        results, errors, idle_cpu_rate = asyncio.run(fleet())
        print()
        print(f"{'deployment':<34} {'status':<10} {'time':>8} {'server CPU':>11} {'CPU/event':>10} {'req/event':>10} {'RSS':>9}")
        for group, expected, status, elapsed, cpu, events, requests, rss in results:
            label = f"AllAtOnce to {expected}" if group == "all" else f"OneAtATime to {expected}"
            per_event = cpu / events * 1000 if events else float("nan")
            print(f"{label:<34} {status:<10} {elapsed:>7.1f}s {cpu:>10.2f}s {per_event:>8.2f}ms {requests / max(events, 1):>10.2f} {rss:>7.1f}MiB")
        print(f"  server CPU with the {args.agents} agents connected and nothing to deploy: {idle_cpu_rate * 1000:.0f} ms per second")
        print(f"  ({args.agents} agents in one process, one TLS connection each; events = instance-events the agents completed; "
              f"server RSS before the agents connected: {idle_rss:.1f} MiB; non-200 answers: {errors})")
    finally:
        code = stop_server(server)
        subprocess.run(["rm", "-rf", directory])
        if code != 0:
            sys.exit(f"deployctl server exited {code} after SIGTERM")


if __name__ == "__main__":
    main()
