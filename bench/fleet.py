#!/usr/bin/env python3
"""Deployments through agents: create-deployment to Succeeded on one instance, and 50 instances on one host.

1. A revision with one no-op hook, one instance, one agent (`--poll-interval 0.05`): the median wall time of
   `create-deployment --wait` until Succeeded, RUNS times, beside the hook's own run time.
2. FLEET instances, one agent each on this host (separate roots), AllAtOnce and OneAtATime: the wall time to
   Succeeded and the control-plane overhead per instance-event ((wall time) / (instances x events run)).

Usage: `make bench-fleet` or `python3 bench/fleet.py [--binary PATH] [--runs N] [--fleet N] [--poll S]`.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS_RUN = 7  # ApplicationStop, DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--fleet", type=int, default=50)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        state = os.path.join(scratch, "state.db")

        def cli(*command, check=True):
            proc = subprocess.run([args.binary, *command, "--state", state], capture_output=True, text=True)
            if check and proc.returncode != 0:
                raise SystemExit(f"deployctl {' '.join(command)} failed: {proc.stderr}")
            return proc.stdout

        source = os.path.join(scratch, "trivial")
        os.makedirs(source)
        with open(os.path.join(source, "appspec.yml"), "w") as f:
            f.write("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: noop.sh\n")
        with open(os.path.join(source, "noop.sh"), "w") as f:
            f.write("#!/bin/sh\ntrue\n")
        os.chmod(os.path.join(source, "noop.sh"), 0o755)
        cli("create-application", "--application-name", "bench")
        out = cli("push", "--application-name", "bench", "--s3-location", "s3://releases/trivial.zip", "--source", source)
        location = out.split("--s3-location ")[1].split(" ")[0]

        def start_agents(names, poll):
            return [subprocess.Popen([args.binary, "agent", "run", "--instance-name", n, "--agent-root", os.path.join(scratch, n, "root"),
                                      "--install-root", os.path.join(scratch, n, "host"), "--poll-interval", str(poll), "--state", state],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in names]

        def stop(agents):
            for a in agents:
                a.terminate()
            for a in agents:
                a.wait()

        def deploy(group, config):
            start = time.perf_counter()
            proc = subprocess.run([args.binary, "create-deployment", "--application-name", "bench", "--deployment-group-name", group,
                                   "--deployment-config-name", config, "--s3-location", location, "--wait", "--timeout", "600",
                                   "--state", state], capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"deployment failed: {proc.stderr[-2000:]}")
            return elapsed

        cli("register-on-premises-instance", "--instance-name", "solo")
        cli("add-tags-to-on-premises-instances", "--instance-names", "solo", "--tags", "Key=set,Value=solo")
        cli("create-deployment-group", "--application-name", "bench", "--deployment-group-name", "solo",
            "--on-premises-instance-tag-filters", "Key=set,Value=solo,Type=KEY_AND_VALUE")
        agents = start_agents(["solo"], 0.05)
        times = [deploy("solo", "CodeDeployDefault.OneAtATime") for _ in range(args.runs)]
        stop(agents)
        hook = []
        for _ in range(args.runs):
            t = time.perf_counter()
            subprocess.run([os.path.join(source, "noop.sh")])
            hook.append(time.perf_counter() - t)
        print(f"release build, {os.cpu_count()} cores")
        print(f"one instance, trivial bundle, median of {args.runs}: create-deployment --wait to Succeeded "
              f"{statistics.median(times) * 1000:.0f} ms (the hook alone {statistics.median(hook) * 1000:.1f} ms; "
              f"agent poll interval 50 ms; {EVENTS_RUN} events)")

        names = [f"node-{i:02d}" for i in range(args.fleet)]
        for name in names:
            cli("register-on-premises-instance", "--instance-name", name)
        for i in range(0, len(names), 10):
            cli("add-tags-to-on-premises-instances", "--tags", "Key=set,Value=fleet", "--instance-names", *names[i:i + 10])
        cli("create-deployment-group", "--application-name", "bench", "--deployment-group-name", "fleet",
            "--on-premises-instance-tag-filters", "Key=set,Value=fleet,Type=KEY_AND_VALUE")
        agents = start_agents(names, args.poll)
        try:
            for config in ("CodeDeployDefault.AllAtOnce", "CodeDeployDefault.OneAtATime"):
                elapsed = deploy("fleet", config)
                per_event = elapsed / (args.fleet * EVENTS_RUN) * 1000
                print(f"{args.fleet} instances, {config}: {elapsed:.1f} s to Succeeded; {per_event:.1f} ms per instance-event "
                      f"({args.fleet} agents polling every {args.poll} s on this host)")
        finally:
            stop(agents)


if __name__ == "__main__":
    main()
