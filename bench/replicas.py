#!/usr/bin/env python3
"""Issue 26: the same load on three set-ups, in one run.

1. `sqlite`: one `deployctl server` on a state file (the baseline);
2. `postgres, 1 replica`: one server on a PostgreSQL cluster this script starts (initdb into a temporary directory, a
   Unix socket only);
3. `postgres, 2 replicas`: two servers on one database (shared --tls-dir and --artifacts-dir) behind HAProxy in TCP
   mode (TLS passes through), both on loopback.

For each: signed `GetDeployment` requests/s with p50/p99 (wrk, keep-alive connections, one request signed with
botocore and replayed), `CreateDeployment` writes/s (distinct pre-signed requests, one per deployment group, in
order), then an AllAtOnce deployment to `--agents` agents modelled on AWS's agent 1.8.1 (bench/fleet_remote.py:
real TLS and SigV4, an instance key each), from CreateDeployment to Succeeded. Everything it starts is stopped by PID.

Usage: `make bench-replicas` or `python3 bench/replicas.py [--binary PATH] [--agents N] [--seconds N]`.
"""
import argparse
import asyncio
import glob
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_remote import Admin, AwsAgent, cpu_seconds, start_agents  # noqa: E402
from server import presign, wrk, wrk_sequence  # noqa: E402
from serving import codedeploy_client, start_server, stop_server  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Cluster:
    """A PostgreSQL cluster of this run (as the tests start one), stopped by its postmaster's PID."""

    def __init__(self, directory, statements=False, settings=()):
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[-1]
        self.directory = os.path.join(directory, "pg")
        os.makedirs(self.directory)
        prefix = []
        if os.getuid() == 0:
            subprocess.run(["chown", "postgres:postgres", self.directory], check=True)
            prefix = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.directory, "data")
        subprocess.run([*prefix, f"{self.bin}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The package's defaults but for the socket and max_connections: durability on (fsync, synchronous_commit),
        # as a production database runs.
        options = f"-k {self.directory} -c listen_addresses='' -c max_connections=200"
        if statements:  # --statements: what each query costs, printed after each fleet deployment
            options += " -c shared_preload_libraries=pg_stat_statements"
        options += "".join(f" -c {setting}" for setting in settings)
        subprocess.run([*prefix, f"{self.bin}/pg_ctl", "-D", data, "-o", options,
                        "-l", os.path.join(self.directory, "log"), "-w", "start"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self.pid = int(open(os.path.join(data, "postmaster.pid")).readline())

    def database(self):
        name = "b_" + uuid.uuid4().hex[:10]
        subprocess.run([f"{self.bin}/psql", "-h", self.directory, "-U", "postgres", "-qc", f"CREATE DATABASE {name}", "postgres"], check=True)
        return f"postgresql:///{name}?host={self.directory}&user=postgres"

    def psql(self, url, sql):
        """What `sql` prints on the database `url` names (as psql's aligned table)."""
        name = url.split("///", 1)[1].split("?", 1)[0]
        return subprocess.run([f"{self.bin}/psql", "-h", self.directory, "-U", "postgres", "-c", sql, name],
                              check=True, capture_output=True, text=True).stdout

    def cpu_seconds(self):
        """CPU-seconds of the postmaster and every backend it started (a backend that ended since is not counted)."""
        total = cpu_seconds(self.pid)
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = open(stat).read().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.pid:
                    total += cpu_seconds(int(stat.split("/")[2]))
            except (OSError, ValueError, IndexError):
                pass
        return total

    def stop(self):
        os.kill(self.pid, signal.SIGINT)
        while os.path.exists(f"/proc/{self.pid}"):
            time.sleep(0.05)


def start_replica(binary, database, shared, extra=()):
    server = subprocess.Popen([binary, "server", "--database", database, "--state", os.path.join(shared, f"unused-{uuid.uuid4().hex}.db"),
                               "--tls-dir", os.path.join(shared, "tls"), "--artifacts-dir", os.path.join(shared, "artifacts"),
                               "--listen", "127.0.0.1:0", "--quiet", *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    match = re.search(r"serving (\S+) \(CA: (\S+)\)", server.stdout.readline())
    if not match:
        raise SystemExit("deployctl server --database did not start")
    return server, match.group(1), match.group(2)


def start_haproxy(directory, urls):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    servers = "\n".join(f"    server r{i} {url.split('://', 1)[1]}" for i, url in enumerate(urls))
    config = os.path.join(directory, "haproxy.cfg")
    open(config, "w").write(f"""
global
    maxconn 8000
defaults
    mode tcp
    timeout connect 2s
    timeout client 120s
    timeout server 120s
frontend deployctl
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
{servers}
""")
    process = subprocess.Popen(["haproxy", "-db", "-f", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"https://127.0.0.1:{port}"


def measure(label, url, ca, key, pids, args, directory, cluster=None, database=None):
    """The reads, the writes and the fleet deployment against `url`; `pids` are the servers (for their CPU)."""
    results = {"GetDeployment": None, "CreateDeployment": None}
    if not args.fleet_only:
        results.update(reads_and_writes(label, url, ca, key, args, directory))
    statements = cluster is not None and args.statements
    if statements:
        cluster.psql(database, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()")
    results["fleet"] = fleet(url, ca, key, pids, args, cluster.cpu_seconds if cluster else lambda: 0.0)
    if statements:
        print(f"\n{label}: the fleet deployment's 20 costliest statements (pg_stat_statements)")
        print(cluster.psql(database, STATEMENTS_REPORT))
    return results


# Per statement: calls, execution and planning milliseconds in all, and the statement (its first 110 characters).
STATEMENTS_REPORT = """
SELECT calls, round(total_exec_time::numeric) AS exec_ms, round(total_plan_time::numeric) AS plan_ms,
       round((total_exec_time / greatest(calls, 1) * 1000)::numeric) AS us_per_call, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS query
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time + total_plan_time DESC LIMIT 20;
SELECT sum(calls) AS calls, round(sum(total_exec_time)::numeric) AS exec_ms, count(*) AS statements
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"""


def reads_and_writes(label, url, ca, key, args, directory):
    """Signed GetDeployment reads (wrk) and distinct CreateDeployment writes against `url`."""
    client = codedeploy_client(url, ca, key, region="us-east-1")
    role = "arn:aws:iam::000000000000:role/bench"
    client.create_application(applicationName="bench")
    for i in range(3):  # targets, so that each deployment stays in flight until stopped
        client.register_on_premises_instance(instanceName=f"bench-{i}", iamUserArn=f"arn:aws:iam::000000000000:user/bench-{i}")
        client.add_tags_to_on_premises_instances(instanceNames=[f"bench-{i}"], tags=[{"Key": "env", "Value": "bench"}])
    filters = [{"Key": "env", "Value": "bench", "Type": "KEY_AND_VALUE"}]
    client.create_deployment_group(applicationName="bench", deploymentGroupName="g", serviceRoleArn=role, onPremisesInstanceTagFilters=filters)
    last = None
    for i in range(args.deployments):
        last = client.create_deployment(applicationName="bench", deploymentGroupName="g", revision={
            "revisionType": "S3", "s3Location": {"bucket": "releases", "key": f"bench-{i}.zip", "bundleType": "zip"}})["deploymentId"]
        client.stop_deployment(deploymentId=last)
    for i in range(args.writes):
        client.create_deployment_group(applicationName="bench", deploymentGroupName=f"w{i}", serviceRoleArn=role, onPremisesInstanceTagFilters=filters)
    results = {}
    headers, body = presign(url, key, "GetDeployment", json.dumps({"deploymentId": last}).encode())
    results["GetDeployment"] = wrk(url, headers, body, args.seconds, args.connections, 1, directory, "get-" + label.replace(" ", "-").replace(",", ""))
    writes = [presign(url, key, "CreateDeployment", json.dumps({
        "applicationName": "bench", "deploymentGroupName": f"w{i}",
        "revision": {"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "w.zip", "bundleType": "zip"}}}).encode())
        for i in range(args.writes)]
    results["CreateDeployment"] = wrk_sequence(url, writes, args.write_seconds, args.connections, 1, directory)
    return results


def fleet(url, ca, key, pids, args, database_cpu=lambda: 0.0):
    """An AllAtOnce deployment to `args.agents` AWS-model agents: seconds from CreateDeployment to Succeeded, servers' CPU."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    client = codedeploy_client(url, ca, key)
    client.create_application(applicationName="fleet")
    client.create_deployment_group(applicationName="fleet", deploymentGroupName="all", serviceRoleArn="arn:aws:iam::000000000000:role/bench",
                                   deploymentConfigName="CodeDeployDefault.AllAtOnce",
                                   onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": "all", "Type": "KEY_AND_VALUE"}])
    bundle = tempfile.mkdtemp(prefix="deployctl-bench-bundle-")
    open(os.path.join(bundle, "appspec.yml"), "w").write("version: 0.0\nos: linux\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
    env.update({"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"], "AWS_CA_BUNDLE": ca,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    try:
        subprocess.run([args.binary, "push", "--application-name", "fleet", "--s3-location", "s3://releases/fleet.zip", "--source", bundle,
                        "--endpoint-url", url], check=True, capture_output=True, env=env)
    finally:
        subprocess.run(["rm", "-rf", bundle])

    async def run():
        context = ssl.create_default_context(cafile=ca)
        loop = asyncio.get_running_loop()
        names = [f"host-{i:05d}" for i in range(args.agents)]
        keys = await Admin(key, int(port), context).register(names, lambda n: [{"Key": "fleet", "Value": "all"}])
        counters = {"requests": 0, "errors": 0, "events": 0, "handshakes": 0}
        stop = asyncio.Event()
        _, tasks = await start_agents(AwsAgent, dict(sorted(keys.items())), int(port), context, counters, stop, per_second=500)
        await asyncio.sleep(3)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        database_before, own_before = database_cpu(), cpu_seconds(os.getpid())
        t0 = time.perf_counter()
        deployment = await loop.run_in_executor(None, lambda: client.create_deployment(
            applicationName="fleet", deploymentGroupName="all",
            revision={"revisionType": "S3", "s3Location": {"bucket": "releases", "key": "fleet.zip", "bundleType": "zip"}})["deploymentId"])
        status = "Created"
        while status not in ("Succeeded", "Failed", "Stopped") and time.perf_counter() - t0 < 300:
            await asyncio.sleep(0.2)
            status = (await loop.run_in_executor(None, lambda: client.get_deployment(deploymentId=deployment)))["deploymentInfo"]["status"]
        elapsed = time.perf_counter() - t0
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        database, own = database_cpu() - database_before, cpu_seconds(os.getpid()) - own_before
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {"status": status, "seconds": elapsed, "server_cpu": cpu, "database_cpu": database, "agents_cpu": own, "events": counters["events"]}

    return asyncio.run(run())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=8, help="each read measurement (wrk)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--write-seconds", type=int, default=2)
    parser.add_argument("--deployments", type=int, default=200, help="deployments in the group GetDeployment reads")
    parser.add_argument("--writes", type=int, default=2500, help="deployment groups, one per distinct CreateDeployment")
    parser.add_argument("--setups", default="sqlite,postgres-1,postgres-2",
                        help="which set-ups, in order (comma-separated): sqlite, postgres-1 (one replica), postgres-2 (two behind HAProxy)")
    parser.add_argument("--fleet-only", action="store_true", help="only the fleet deployment (no wrk reads and writes)")
    parser.add_argument("--statements", action="store_true",
                        help="load pg_stat_statements and print the fleet deployment's costliest statements on PostgreSQL")
    parser.add_argument("--postgres-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the cluster (postgres -c), as many as needed")
    parser.add_argument("--keep", action="store_true", help="leave the temporary directory (the cluster's log) in place")
    args = parser.parse_args()
    setups = args.setups.split(",")
    unknown = [s for s in setups if s not in ("sqlite", "postgres-1", "postgres-2")]
    if unknown:
        sys.exit(f"--setups: unknown set-up {unknown[0]!r} (expected sqlite, postgres-1 or postgres-2)")
    for tool in ("wrk", "haproxy"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"bench-replicas needs {tool}: apt-get install {tool}")
    directory = tempfile.mkdtemp(prefix="deployctl-bench-replicas-")
    os.chmod(directory, 0o755)  # the postgres user reaches its cluster below it
    cluster = Cluster(directory, statements=args.statements, settings=args.postgres_setting)
    rows = []
    try:
        for setup in setups:
            if setup == "sqlite":
                server, url, ca, key = start_server(args.binary, os.path.join(tempfile.mkdtemp(dir=directory), "state.db"))
                try:
                    rows.append(("sqlite", measure("sqlite", url, ca, key, [server.pid], args, directory)))
                finally:
                    stop_server(server)
            else:
                rows.append(measure_replicas(int(setup.rsplit("-", 1)[1]), cluster, args, directory))
    finally:
        cluster.stop()
        if args.keep:
            print(f"kept {directory}")
        else:
            subprocess.run(["rm", "-rf", directory])
    report(rows, args)


def measure_replicas(count, cluster, args, directory):
    """`count` replicas on a database of their own (behind HAProxy when more than one): (label, results)."""
    database = cluster.database()
    shared = tempfile.mkdtemp(prefix=f"shared-{count}-", dir=directory)
    key = json.loads(subprocess.run([args.binary, "create-access-key", "--database", database, "--user-name", "bench", "--role", "admin"],
                                    capture_output=True, text=True, check=True).stdout)["AccessKey"]
    replicas = [start_replica(args.binary, database, shared) for _ in range(count)]
    balancer = None
    try:
        url, ca = replicas[0][1], replicas[0][2]
        if count > 1:
            balancer, url = start_haproxy(shared, [r[1] for r in replicas])
        label = f"postgres, {count} replica{'s' if count > 1 else ''}" + (" behind HAProxy" if count > 1 else "")
        return label, measure(label, url, ca, key, [r[0].pid for r in replicas], args, directory, cluster, database)
    finally:
        if balancer:
            balancer.send_signal(signal.SIGTERM)
            balancer.wait()
        for replica in replicas:
            stop_server(replica[0])


def report(rows, args):
    print()
    print(f"{'set-up':<38} {'GetDeployment/s':>15} {'p50':>8} {'p99':>8} {'CreateDeployment/s':>18} {'p99':>8} "
          f"{'AllAtOnce to ' + str(args.agents):>18} {'servers CPU':>11} {'database CPU':>12} {'agents CPU':>10}")
    for label, r in rows:
        g, c, f = r["GetDeployment"], r["CreateDeployment"], r["fleet"]
        http = (f"{g['rate']:>15.0f} {g['p50']:>6.2f}ms {g['p99']:>6.2f}ms {c['rate']:>18.0f} {c['p99']:>6.2f}ms" if g
                else f"{'-':>15} {'-':>8} {'-':>8} {'-':>18} {'-':>8}")
        print(f"{label:<38} {http} {f['seconds']:>16.1f} s {f['server_cpu']:>9.1f} s {f['database_cpu']:>10.1f} s {f['agents_cpu']:>8.1f} s  "
              f"{f['status']}" + (f" (non-200: {g['non200']}/{c['non200']})" if g and (g["non200"] or c["non200"]) else ""))
    print()
    base = rows[0][1]
    for label, r in rows[1:]:
        line = f"{label}: "
        if r["GetDeployment"] and base["GetDeployment"]:
            line += (f"reads {r['GetDeployment']['rate'] / base['GetDeployment']['rate']:.2f}x {rows[0][0]}'s, "
                     f"writes {r['CreateDeployment']['rate'] / base['CreateDeployment']['rate']:.2f}x, ")
        print(line + f"the fleet deployment {r['fleet']['seconds'] / base['fleet']['seconds']:.2f}x {rows[0][0]}'s time")
    print(f"(wrk: 1 thread, {args.connections} connections, reads {args.seconds} s, writes {args.write_seconds} s; {os.cpu_count()} cores shared by "
          "every process: client, servers, PostgreSQL, HAProxy)")


if __name__ == "__main__":
    main()
