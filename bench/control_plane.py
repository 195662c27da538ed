#!/usr/bin/env python3
"""Control-plane latency: `get-deployment` and `list-deployments` over a state holding 1,000 deployments.

Each figure is the median wall time of RUNS invocations of the release binary, beside a baseline measured in
the same run: `deployctl --version` (process start and argument parsing, no state file), so the ratio shows
what opening the state and answering the query adds. Usage: `make bench` or
`python3 bench/control_plane.py [--binary PATH] [--runs N] [--deployments N]`.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--runs", type=int, default=51)
    parser.add_argument("--deployments", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        state = os.path.join(directory, "state.db")

        def run(*command):
            proc = subprocess.run([args.binary, *command, "--state", state], capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"deployctl {' '.join(command)} failed: {proc.stderr}")
            return proc.stdout

        started = time.perf_counter()
        run("create-application", "--application-name", "bench")
        for i in range(3):
            run("register-on-premises-instance", "--instance-name", f"host-{i}")
            run("add-tags-to-on-premises-instances", "--instance-names", f"host-{i}", "--tags", "Key=env,Value=bench")
        run("create-deployment-group", "--application-name", "bench", "--deployment-group-name", "g",
            "--on-premises-instance-tag-filters", "Key=env,Value=bench,Type=KEY_AND_VALUE")
        ids = []
        for i in range(args.deployments):
            out = run("create-deployment", "--application-name", "bench", "--deployment-group-name", "g",
                      "--s3-location", f"bucket=releases,key=bench-{i}.zip,bundleType=zip")
            deployment_id = json.loads(out)["deploymentId"]
            ids.append(deployment_id)
            run("stop-deployment", "--deployment-id", deployment_id)
        fill = time.perf_counter() - started
        size = os.path.getsize(state)
        print(f"state: {args.deployments} deployments (create + stop each) in {fill:.1f} s, {size / 1024:.0f} KiB")

        def median_ms(command, with_state=True):
            full = [args.binary, *command] + (["--state", state] if with_state else [])
            samples = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                samples.append((time.perf_counter() - t0) * 1000)
            return statistics.median(samples)

        baseline = median_ms(["--version"], with_state=False)
        cases = [
            ("get-deployment", ["get-deployment", "--deployment-id", ids[len(ids) // 2]]),
            ("list-deployments (all 1,000, 10 pages merged)", ["list-deployments"]),
            ("list-deployments --application-name --deployment-group-name",
             ["list-deployments", "--application-name", "bench", "--deployment-group-name", "g"]),
            ("list-deployments --include-only-statuses Stopped", ["list-deployments", "--include-only-statuses", "Stopped"]),
            ("get-deployment --output table", ["get-deployment", "--deployment-id", ids[-1], "--output", "table"]),
        ]
        print(f"median of {args.runs} runs each, release build, {os.cpu_count()} cores")
        print(f"{'command':<62} {'median ms':>10} {'x baseline':>11}")
        print(f"{'baseline: deployctl --version (no state)':<62} {baseline:>10.1f} {1.0:>11.2f}")
        for label, command in cases:
            ms = median_ms(command)
            print(f"{label:<62} {ms:>10.1f} {ms / baseline:>11.2f}")


if __name__ == "__main__":
    main()
