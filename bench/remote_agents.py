#!/usr/bin/env python3
"""Three real `deployctl agent run --config` processes against one `deployctl server` over HTTPS on loopback, each
set up by `deployctl register` as a host would be.

Measures, for a trivial bundle (no hooks) deployed AllAtOnce to the three:
- create-deployment -> Succeeded, seen by boto3 polling GetDeployment every 10 ms (the server's own time);
- `deployctl create-deployment --wait --endpoint-url` wall time (what an operator waits, process start included);
and the agents at rest: RSS and CPU over an idle period (each holds one poll at a time).

Usage: `make bench-remote-agents` or `python3 bench/remote_agents.py [--binary PATH] [--runs N] [--idle-seconds N]`.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from fleet_remote import cpu_seconds, rss_mib
from serving import codedeploy_client, start_server, stop_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--idle-seconds", type=int, default=10)
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="deployctl-bench-agents-")
    state = os.path.join(directory, "state.db")
    server, url, ca, admin = start_server(args.binary, state)
    agents = []
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
        admin_env = dict(env, AWS_ACCESS_KEY_ID=admin["AccessKeyId"], AWS_SECRET_ACCESS_KEY=admin["SecretAccessKey"], AWS_CA_BUNDLE=ca,
                         AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        client = codedeploy_client(url, ca, admin)
        client.create_application(applicationName="web")
        client.create_deployment_group(applicationName="web", deploymentGroupName="fleet", serviceRoleArn="arn:aws:iam::000000000000:role/r",
                                       deploymentConfigName="CodeDeployDefault.AllAtOnce",
                                       onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": "web", "Type": "KEY_AND_VALUE"}])
        for i in range(1, 4):
            host = os.path.join(directory, f"web-{i}")
            subprocess.run([args.binary, "register", "--state", state, "--instance-name", f"web-{i}", "--tags", "Key=fleet,Value=web",
                            "--endpoint-url", url, "--output-dir", host], check=True, capture_output=True)
            config = os.path.join(host, "codedeployagent.yml")
            text = open(config).read().replace("/etc/codedeploy-agent/conf/", host + "/")
            open(config, "w").write(text.replace("/opt/codedeploy-agent/deployment-root", host + "/root"))
            agents.append(subprocess.Popen([args.binary, "agent", "run", "--config", config, "--install-root", host + "/fs"],
                                           stderr=subprocess.DEVNULL, env=env))
        bundle = os.path.join(directory, "bundle")
        os.makedirs(os.path.join(bundle, "site"))
        open(os.path.join(bundle, "site", "index.html"), "w").write("hello\n")
        open(os.path.join(bundle, "appspec.yml"), "w").write(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/app\n")
        subprocess.run([args.binary, "push", "--application-name", "web", "--s3-location", "s3://releases/app.zip", "--source", bundle,
                        "--endpoint-url", url], check=True, capture_output=True, env=admin_env)
        revision = {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "app.zip", "bundleType": "zip"}}
        time.sleep(1)  # every agent's first poll is held

        server_times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            deployment = client.create_deployment(applicationName="web", deploymentGroupName="fleet", revision=revision)["deploymentId"]
            while True:
                status = client.get_deployment(deploymentId=deployment)["deploymentInfo"]["status"]
                if status in ("Succeeded", "Failed", "Stopped"):
                    break
                time.sleep(0.01)
            server_times.append(time.perf_counter() - t0)
            assert status == "Succeeded", status
        cli_times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run([args.binary, "create-deployment", "--application-name", "web", "--deployment-group-name", "fleet",
                            "--s3-location", "bucket=releases,key=app.zip,bundleType=zip", "--wait", "--endpoint-url", url],
                           check=True, capture_output=True, env=admin_env)
            cli_times.append(time.perf_counter() - t0)

        time.sleep(1)
        cpu_before = [cpu_seconds(a.pid) for a in agents]
        time.sleep(args.idle_seconds)
        idle_cpu = [(cpu_seconds(a.pid) - before) * 1000 for a, before in zip(agents, cpu_before)]
        idle_rss = [rss_mib(a.pid) for a in agents]
        if os.environ.get("BENCH_RSS_BREAKDOWN"):  # a script given the pid and binary (BENCHMARKS.md)
            subprocess.run([sys.executable, os.environ["BENCH_RSS_BREAKDOWN"], str(agents[0].pid), args.binary])

        print(f"3 deployctl agents over HTTPS, trivial bundle (one file, no hooks), AllAtOnce, {args.runs} runs each:")
        print(f"  create-deployment -> Succeeded (boto3 polling every 10 ms): median {statistics.median(server_times) * 1000:.0f} ms, "
              f"max {max(server_times) * 1000:.0f} ms")
        print(f"  deployctl create-deployment --wait --endpoint-url (process included): median {statistics.median(cli_times) * 1000:.0f} ms, "
              f"max {max(cli_times) * 1000:.0f} ms")
        print(f"  agents at rest for {args.idle_seconds} s: RSS {', '.join(f'{r:.1f}' for r in idle_rss)} MiB; "
              f"CPU {', '.join(f'{c:.0f}' for c in idle_cpu)} ms")
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
        for agent in agents:
            agent.wait(timeout=60)
        stop_server(server)
        subprocess.run(["rm", "-rf", directory])


if __name__ == "__main__":
    main()
