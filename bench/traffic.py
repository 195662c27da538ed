#!/usr/bin/env python3
"""Deployments behind a real HAProxy under load (issue 25): requests lost per release with and without traffic
control, from the same load, and the time from AllowTraffic's start to the first request the new version serves.

Builds the fleet of Tests/traffic (HAProxy on loopback, `deployctl server --load-balancer`, three agents whose hooks
run a small HTTP service, a service that takes 0.5 s to start), then for each round deploys a new version with
traffic control and another without it (the baseline: the same group, WITHOUT_TRAFFIC_CONTROL) while three clients
send requests through HAProxy, each one at a time.

Usage: `python3 bench/traffic.py [--binary PATH] [--rounds N]` (root; haproxy installed: Scripts/setup.sh).
"""
import argparse
import datetime
import importlib.util
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_tests(binary):
    os.environ["DEPLOYCTL_BIN"] = binary
    spec = importlib.util.spec_from_file_location("traffic_tests", os.path.join(ROOT, "Tests", "traffic", "test_traffic.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seconds(stamp):
    return datetime.datetime.fromisoformat(stamp).timestamp()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    t = load_tests(os.path.abspath(args.binary))
    with t.traffic_fleet() as (server, haproxy, hosts, directory, ports):
        versions = [f"v{i}" for i in range(1, 2 * args.rounds + 2)]
        for version in versions:
            t.push(server, directory, version)
        assert t.info(server, t.deploy(server, versions[0]))["status"] == "Succeeded"
        port_of = {h.name: h.port for h in hosts}
        rows = []
        admit = []
        for round_index in range(args.rounds):
            for controlled, version in ((True, versions[1 + 2 * round_index]), (False, versions[2 + 2 * round_index])):
                option = "WITH_TRAFFIC_CONTROL" if controlled else "WITHOUT_TRAFFIC_CONTROL"
                t.remote(server, "update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "web",
                         "--deployment-style", f"deploymentType=IN_PLACE,deploymentOption={option}")
                load = t.Load(haproxy.port, path="/who")
                time.sleep(0.5)
                started = time.monotonic()
                deployment = t.deploy(server, version)
                elapsed = time.monotonic() - started
                time.sleep(0.5)
                served, failed = load.stop()
                status = t.info(server, deployment)["status"]
                rows.append((round_index + 1, option, status, served, failed, elapsed))
                if controlled:
                    for name in port_of:
                        event = t.events(server, deployment, name)["AllowTraffic"]
                        first = load.first.get(f"{version} {port_of[name]}")
                        if first and event.get("startTime"):
                            admit.append((first - seconds(event["startTime"]), seconds(event["endTime"]) - seconds(event["startTime"])))
        print(f"{'round':>5}  {'traffic control':<24} {'status':<10} {'served':>7} {'failed':>7} {'deploy s':>9}")
        for row in rows:
            print(f"{row[0]:>5}  {row[1]:<24} {row[2]:<10} {row[3]:>7} {row[4]:>7} {row[5]:>9.1f}")
        with_failed = [r[4] for r in rows if r[1] == "WITH_TRAFFIC_CONTROL"]
        without_failed = [r[4] for r in rows if r[1] == "WITHOUT_TRAFFIC_CONTROL"]
        print(f"\nrequests lost per release: with traffic control {statistics.mean(with_failed):.1f} "
              f"(max {max(with_failed)}), without {statistics.mean(without_failed):.1f} (max {max(without_failed)})")
        if admit:
            first = [a for a, _ in admit]
            duration = [d for _, d in admit]
            print(f"AllowTraffic start -> first request served by the new version: median {statistics.median(first) * 1000:.0f} ms, "
                  f"max {max(first) * 1000:.0f} ms ({len(first)} instances); AllowTraffic itself: median "
                  f"{statistics.median(duration) * 1000:.0f} ms")
        t.remote(server, "update-deployment-group", "--application-name", "shop", "--current-deployment-group-name", "web",
                 "--deployment-style", "deploymentType=IN_PLACE,deploymentOption=WITH_TRAFFIC_CONTROL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
