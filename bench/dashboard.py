#!/usr/bin/env python3
"""The dashboard's cost on the server (issue 27): the deployments page over 10,000 deployments and the page of a
deployment to 500 instances, each fetched 20 times by a signed-in client over TLS. Prints the server's own render
time and store reads per page (its `Server-Timing` header) and the time the client waited, medians.

Usage: `make bench-dashboard` or `python3 bench/dashboard.py [--binary PATH] [--deployments N] [--instances N]`.
"""
import argparse
import http.client
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

from serving import codedeploy_client, start_server, stop_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--deployments", type=int, default=10000)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--fetches", type=int, default=20)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="deployctl-bench-dashboard-")
    state = os.path.join(directory, "state.db")
    server, url, ca, admin = start_server(args.binary, state)
    try:
        client = codedeploy_client(url, ca, admin)
        role = "arn:aws:iam::000000000000:role/bench"
        client.create_application(applicationName="shop")
        client.create_deployment_group(applicationName="shop", deploymentGroupName="empty", serviceRoleArn=role,
                                       onPremisesInstanceTagFilters=[{"Key": "none", "Value": "none", "Type": "KEY_AND_VALUE"}])
        client.create_deployment_group(applicationName="shop", deploymentGroupName="fleet", serviceRoleArn=role,
                                       onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": "web", "Type": "KEY_AND_VALUE"}])
        revision = {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "shop.zip", "bundleType": "zip"}}
        started = time.perf_counter()
        # A group with no instances: each deployment fails at once (NO_INSTANCES), so the next can be made.
        for _ in range(args.deployments - 1):
            client.create_deployment(applicationName="shop", deploymentGroupName="empty", revision=revision)
        names = [f"web-{i:04d}" for i in range(args.instances)]
        for name in names:
            client.register_on_premises_instance(instanceName=name, iamUserArn=f"arn:aws:iam::000000000000:user/{name}")
        for i in range(0, len(names), 10):
            client.add_tags_to_on_premises_instances(instanceNames=names[i:i + 10], tags=[{"Key": "fleet", "Value": "web"}])
        big = client.create_deployment(applicationName="shop", deploymentGroupName="fleet", revision=revision)["deploymentId"]
        print(f"made {args.deployments} deployments (the newest to {args.instances} instances) in {time.perf_counter() - started:.1f} s")

        host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
        context = ssl.create_default_context(cafile=ca)
        connection = http.client.HTTPSConnection(host, port, context=context)
        form = urllib.parse.urlencode({"accessKeyId": admin["AccessKeyId"], "secretAccessKey": admin["SecretAccessKey"]})
        connection.request("POST", "/ui/signin", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
        answer = connection.getresponse()
        answer.read()
        cookie = answer.getheader("Set-Cookie").split(";")[0]
        if answer.status != 303:
            raise SystemExit(f"sign-in answered {answer.status}")

        def measure(path):
            renders, reads, waits, size = [], None, [], 0
            for _ in range(args.fetches):
                t0 = time.perf_counter()
                connection.request("GET", path, headers={"Cookie": cookie})
                response = connection.getresponse()
                body = response.read()
                waits.append((time.perf_counter() - t0) * 1000)
                if response.status != 200:
                    raise SystemExit(f"{path} answered {response.status}")
                timing = re.search(r'dur=([\d.]+);desc="(\d+) store reads"', response.getheader("Server-Timing"))
                renders.append(float(timing.group(1)))
                reads = int(timing.group(2))
                size = len(body)
            return statistics.median(renders), reads, statistics.median(waits), size

        print(f"\n{'page':<44} {'render (server)':>15} {'store reads':>11} {'client waited':>13} {'HTML':>9}")
        for label, path in ((f"deployments (of {args.deployments}), first page", "/ui/deployments"),
                            ("deployments, status Failed", "/ui/deployments?status=Failed"),
                            (f"a deployment to {args.instances} instances", f"/ui/deployments/{big}"),
                            ("  its live part (what the script fetches)", f"/ui/deployments/{big}?part=live"),
                            (f"instances ({args.instances})", "/ui/instances")):
            render, reads, wait, size = measure(path)
            print(f"{label:<44} {render:>12.1f} ms {reads:>11} {wait:>10.1f} ms {size / 1024:>6.0f} KiB")
        print(f"  (medians of {args.fetches}; one TLS connection kept open; render = the server's Server-Timing)")
    finally:
        code = stop_server(server)
        subprocess.run(["rm", "-rf", directory])
        if code != 0:
            sys.exit(f"deployctl server exited {code} after SIGTERM")


if __name__ == "__main__":
    main()
