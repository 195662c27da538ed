#!/usr/bin/env python3
"""`deployctl server` under the attacks of issue 22, measured against a baseline taken in the same run.

1. Memory: the server's RSS before and after FLOOD unauthenticated requests, each with a unique X-Amz-Target
   (wrk with a Lua script; goal: under +10 MiB).
2. Stalls: p50/p99 of a signed GetApplication alone, then while two CompleteMultipartUpload calls join OBJECT_MB
   each (goal: p99 under 100 ms).
3. Connections: a signed request's latency on a fresh connection, alone and while IDLE connections that finished
   their TLS handshake and sent nothing are open (goal: under 1 s).

Usage: `python3 bench/attacks.py [--binary PATH] [--flood 50000] [--object-mb 2048] [--idle 2000]`.
Needs wrk (`apt-get install wrk`) for the flood.
"""
import argparse
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving import codedeploy_client, start_server, stop_server  # noqa: E402

import boto3  # noqa: E402
import botocore.config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def latencies(client, seconds):
    taken = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        client.get_application(applicationName="bench")
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def flood(url, count):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write("""
counter = 0
request = function()
  counter = counter + 1
  local prefixes = {"CodeDeployCommandService_v20141006.", "CodeDeploy_20141006.", "Deployctl_20261130."}
  local target = prefixes[(counter % 3) + 1] .. "op" .. counter .. "-" .. math.random(1, 1000000000)
  return wrk.format("POST", "/", {["X-Amz-Target"] = target, ["Content-Type"] = "application/x-amz-json-1.1"}, "{}")
end
""")
    script.close()
    # wrk runs for a time, not a count: run until `count` requests are sent (checked from its summary).
    sent = 0
    while sent < count:
        out = subprocess.run(["wrk", "-t2", "-c32", "-d5s", "-s", script.name, url + "/"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "requests in" in line:
                sent += int(line.split()[0])
    os.unlink(script.name)
    return sent


def s3(url, ca, key):
    return boto3.session.Session().client(
        "s3", endpoint_url=url, region_name="us-east-1", verify=ca, aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                                      read_timeout=600, connect_timeout=60))


def prepare_upload(client, key, object_mb):
    upload = client.create_multipart_upload(Bucket="bench", Key=key)["UploadId"]
    part_mb = 128
    chunk = os.urandom(part_mb << 20)
    parts = []
    remaining = object_mb
    number = 1
    while remaining > 0:
        size = min(part_mb, remaining)
        body = chunk[: size << 20]
        etag = client.upload_part(Bucket="bench", Key=key, UploadId=upload, PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
        remaining -= size
        number += 1
    return upload, parts


def idle_connections(port, ca, count):
    context = ssl.create_default_context(cafile=ca)
    held = []
    for _ in range(count):
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        held.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))
    return held


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--flood", type=int, default=50_000)
    parser.add_argument("--object-mb", type=int, default=2048)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    if args.flood and not shutil.which("wrk"):
        raise SystemExit("wrk is needed for the flood: apt-get install wrk")
    directory = tempfile.mkdtemp(prefix="deployctl-bench-attacks-")
    state = os.path.join(directory, "state.db")
    server, url, ca, key = start_server(args.binary, state, extra=("--header-timeout", "120"))
    try:
        api = codedeploy_client(url, ca, key)
        api.create_application(applicationName="bench")
        print(f"deployctl server {url} (pid {server.pid}), binary {args.binary}")

        if args.flood:
            api.get_application(applicationName="bench")
            before = rss_mib(server.pid)
            sent = flood(url, args.flood)
            time.sleep(1)
            after = rss_mib(server.pid)
            print(f"1. RSS {before:.1f} MiB before, {after:.1f} MiB after {sent:,} unauthenticated requests with unique "
                  f"targets: {after - before:+.1f} MiB (goal under +10 MiB)")

        if args.object_mb:
            alone = latencies(api, args.seconds)
            objects = s3(url, ca, key)
            objects.create_bucket(Bucket="bench")
            uploads = [(f"big-{n}.bin", *prepare_upload(objects, f"big-{n}.bin", args.object_mb)) for n in range(2)]
            done = []

            def complete(name, upload, parts):
                started = time.monotonic()
                objects.complete_multipart_upload(Bucket="bench", Key=name, UploadId=upload, MultipartUpload={"Parts": parts})
                done.append(time.monotonic() - started)

            threads = [threading.Thread(target=complete, args=upload) for upload in uploads]
            for thread in threads:
                thread.start()
            time.sleep(0.2)
            during = []
            while any(thread.is_alive() for thread in threads):
                during += latencies(api, 0.5)
            for thread in threads:
                thread.join()
            print(f"2. GetApplication alone: p50 {statistics.median(alone):.1f} ms, p99 {percentile(alone, 0.99):.1f} ms "
                  f"({len(alone)} calls); during two {args.object_mb} MiB completions ({', '.join(f'{d:.1f} s' for d in done)}): "
                  f"p50 {statistics.median(during):.1f} ms, p99 {percentile(during, 0.99):.1f} ms, max {max(during):.1f} ms "
                  f"({len(during)} calls; goal p99 under 100 ms)")

        if args.idle:
            port = int(url.rsplit(":", 1)[1])

            def fresh():
                client = codedeploy_client(url, ca, key)
                started = time.perf_counter()
                client.list_applications()
                return (time.perf_counter() - started) * 1000

            alone = [fresh() for _ in range(10)]
            held = idle_connections(port, ca, args.idle)
            loaded = [fresh() for _ in range(10)]
            print(f"3. a signed request on a new connection: {statistics.median(alone):.1f} ms alone, "
                  f"{statistics.median(loaded):.1f} ms (max {max(loaded):.1f} ms) with {len(held)} idle connections open "
                  f"(goal under 1 s)")
            for sock in held:
                sock.close()
    finally:
        code = stop_server(server)
        shutil.rmtree(directory, ignore_errors=True)
    if code != 0:
        raise SystemExit(f"deployctl server exited {code}")


if __name__ == "__main__":
    main()
