#!/usr/bin/env python3
"""`deployctl server` under load, from a second process on loopback.

Starts the release binary with TLS on a state holding DEPLOYMENTS deployments, then measures:
- signed `GetDeployment` and `ListDeployments` requests/s with p50/p99 latency (wrk, keep-alive connections, one
  request signed with botocore's SigV4 and replayed: valid for 15 minutes);
- `CreateDeployment` writes/s (distinct pre-signed requests, one per deployment group, sent in order by wrk;
  every write is a committed SQLite transaction);
- the server's RSS during and after the load (VmRSS and VmHWM from /proc);
and, in the same run, the baselines a user would otherwise use: `deployctl get-deployment` on the state file
(one process per call) and `aws deploy get-deployment --endpoint-url` against this server.

Usage: `make bench-server` or `python3 bench/server.py [--binary PATH] [--seconds N] [--connections N]`.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from serving import codedeploy_client, start_server, stop_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def presign(url, key, operation, body):
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=url + "/", data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CodeDeploy_20141006." + operation})
    credentials = botocore.credentials.Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    botocore.auth.SigV4Auth(credentials, "codedeploy", "us-east-1").add_auth(request)
    return dict(request.headers.items()), body


def wrk(url, headers, body, seconds, connections, threads, directory, name):
    script = os.path.join(directory, name + ".lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body.decode())}\n")
        for k, v in headers.items():
            if k.lower() not in ("host", "content-length"):
                f.write(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n")
        # Count the answers that are not 200: a refused request must not pass for throughput.
        f.write("local bad = 0\nresponse = function(status, headers, body) if status ~= 200 then bad = bad + 1 end end\n")
        f.write("done = function(summary, latency, requests) io.write(string.format('non-200: %d\\n', summary.errors.status)) end\n")
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", script, url + "/"],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non200 = int(re.search(r"non-200: (\d+)", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rate": rate, "p50": percentile(50), "p99": percentile(99), "non200": non200, "socket_errors": errors.group(1) if errors else "none"}


def wrk_sequence(url, requests, seconds, connections, threads, directory):
    """wrk sending `requests` in order (each once); answers per second that were 200."""
    script = os.path.join(directory, "sequence.lua")
    with open(script, "w") as f:
        f.write("local requests = {}\n")
        for index, (headers, body) in enumerate(requests, 1):
            fields = dict(headers, Host=url.split("://", 1)[1])
            table = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in fields.items() if k.lower() != "content-length")
            f.write(f"requests[{index}] = wrk.format('POST', '/', {{{table}}}, {json.dumps(body.decode())})\n")
        f.write("local i = 0\nrequest = function() i = i + 1; if i > #requests then i = #requests end; return requests[i] end\n")
        f.write("done = function(summary, latency, requests) io.write(string.format('non-200: %d\\n', summary.errors.status)) end\n")
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", script, url + "/"],
                         capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non200 = int(re.search(r"non-200: (\d+)", out).group(1))
    elapsed = float(re.search(r"requests in ([\d.]+)s", out).group(1))

    def percentile(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    if total >= len(requests):
        print(f"warning: wrk sent all {len(requests)} distinct writes; raise --writes for a longer run", file=sys.stderr)
    return {"rate": (total - non200) / elapsed, "p50": percentile(50), "p99": percentile(99), "non200": non200, "socket_errors": "none"}


def timed(command, runs, env=None):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, env=env)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--saturation-connections", type=int, default=32)
    parser.add_argument("--write-seconds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the machine has 2 cores; the server needs them)")
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=6000)
    args = parser.parse_args()
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        sys.exit("bench-server needs wrk: apt-get install wrk (make bench-server installs it)")

    directory = tempfile.mkdtemp(prefix="deployctl-bench-server-")
    state = os.path.join(directory, "state.db")
    server, url, ca, key = start_server(args.binary, state)
    try:
        print(f"server: {url} (pid {server.pid}), state {state}")
        client = codedeploy_client(url, ca, key, region="us-east-1")
        started = time.perf_counter()
        client.create_application(applicationName="bench")
        for i in range(3):
            client.register_on_premises_instance(instanceName=f"host-{i}", iamUserArn=f"arn:aws:iam::000000000000:user/host-{i}")
            client.add_tags_to_on_premises_instances(instanceNames=[f"host-{i}"], tags=[{"Key": "env", "Value": "bench"}])
        filters = [{"Key": "env", "Value": "bench", "Type": "KEY_AND_VALUE"}]
        role = "arn:aws:iam::000000000000:role/bench"
        client.create_deployment_group(applicationName="bench", deploymentGroupName="g", serviceRoleArn=role, onPremisesInstanceTagFilters=filters)
        def revision(i):
            # Each release is its own bundle, as `push` makes them.
            return {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": f"bench-{i}.zip", "bundleType": "zip"}}

        last = None
        for i in range(args.deployments):
            last = client.create_deployment(applicationName="bench", deploymentGroupName="g", revision=revision(i))["deploymentId"]
            client.stop_deployment(deploymentId=last)
        for i in range(args.writes):
            client.create_deployment_group(applicationName="bench", deploymentGroupName=f"w{i}", serviceRoleArn=role,
                                           onPremisesInstanceTagFilters=filters)
        print(f"filled {args.deployments} deployments and {args.writes} groups through boto3 in {time.perf_counter() - started:.1f} s")
        idle = rss(server.pid)

        results = {}
        get_headers, get_body = presign(url, key, "GetDeployment", json.dumps({"deploymentId": last}).encode())
        list_headers, list_body = presign(url, key, "ListDeployments", json.dumps({"applicationName": "bench", "deploymentGroupName": "g"}).encode())
        peak = {"VmRSS": 0}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                current = rss(server.pid)
                if current["VmRSS"] > peak["VmRSS"]:
                    peak.update(current)
                time.sleep(0.2)

        sampler = threading.Thread(target=sample)
        sampler.start()
        results["GetDeployment"] = wrk(url, get_headers, get_body, args.seconds, args.connections, args.threads, directory, "get")
        results[f"GetDeployment ({args.saturation_connections} conns)"] = wrk(
            url, get_headers, get_body, args.seconds, args.saturation_connections, args.threads, directory, "get")
        results["ListDeployments"] = wrk(url, list_headers, list_body, args.seconds, args.connections, args.threads, directory, "list")

        # Writes: distinct pre-signed CreateDeployment requests, one per group (one active deployment per group), sent
        # by wrk in order; every 200 is a committed SQLite transaction.
        writes = [presign(url, key, "CreateDeployment", json.dumps({
            "applicationName": "bench", "deploymentGroupName": f"w{i}", "revision": revision(args.deployments + i)}).encode())
            for i in range(args.writes)]
        results["CreateDeployment"] = wrk_sequence(url, writes, args.write_seconds, args.connections, args.threads, directory)
        stop.set()
        sampler.join()
        after = rss(server.pid)
        if os.environ.get("BENCH_RSS_BREAKDOWN"):
            subprocess.run([sys.executable, os.environ["BENCH_RSS_BREAKDOWN"], str(server.pid), args.binary])

        # Baselines in the same run.
        local = timed([args.binary, "get-deployment", "--deployment-id", last, "--state", state], 21)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"], "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_CA_BUNDLE": ca, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
        remote_cli = timed([args.binary, "get-deployment", "--deployment-id", last, "--endpoint-url", url], 21, env=env)
        aws_cli = timed(["aws", "deploy", "get-deployment", "--deployment-id", last, "--endpoint-url", url], 5, env=env)

        print()
        print(f"{'request (signed, over TLS)':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8}  socket errors")
        for name, r in results.items():
            print(f"{name:<28} {r['rate']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['non200']:>8}  {r['socket_errors']}")
        print(f"  (wrk: {args.threads} thread(s), {args.connections} connections unless said, {args.seconds} s each; writes {args.write_seconds} s, distinct requests)")
        print()
        print(f"server RSS: idle {idle['VmRSS']:.1f} MiB, peak under load {peak['VmRSS']:.1f} MiB, after {after['VmRSS']:.1f} MiB (high-water mark {after['VmHWM']:.1f} MiB);")
        print(f"  of which private (anonymous) memory after the load: {after['RssAnon']:.1f} MiB, the rest is the binary's file pages")
        print()
        get_ms = 1000 / results["GetDeployment"]["rate"]
        print("one get-deployment, same state, same run (median wall time):")
        print(f"  server, per request at load      {get_ms:8.3f} ms  (1.0x)")
        print(f"  server p50 latency at load       {results['GetDeployment']['p50']:8.3f} ms")
        print(f"  deployctl get-deployment (local) {local:8.1f} ms  ({local / get_ms:.0f}x)")
        print(f"  deployctl … --endpoint-url       {remote_cli:8.1f} ms  ({remote_cli / get_ms:.0f}x)")
        print(f"  aws deploy get-deployment        {aws_cli:8.1f} ms  ({aws_cli / get_ms:.0f}x)")
    finally:
        code = stop_server(server)
        subprocess.run(["rm", "-rf", directory])
        if code != 0:
            sys.exit(f"deployctl server exited {code} after SIGTERM")


if __name__ == "__main__":
    main()
