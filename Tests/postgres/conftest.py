"""Several `deployctl server` replicas on one real PostgreSQL (issue 26).

One cluster per suite: Debian's `postgresql` package, `initdb` into a temporary directory as the unprivileged
`postgres` user (root may not run one), listening on a Unix socket in that directory only; stopped by its PID at the
end. Each test gets a database of its own, and its replicas share a --tls-dir and an --artifacts-dir, as replicas on
several hosts share a mounted directory.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

import importlib.util

_SERVER_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server")
_spec = importlib.util.spec_from_file_location("server_conftest", os.path.join(_SERVER_TESTS, "conftest.py"))
server_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(server_conftest)
BINARY, ROLES, Server, deployctl = server_conftest.BINARY, server_conftest.ROLES, server_conftest.Server, server_conftest.deployctl


def postgres_bin():
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not versions:
        raise AssertionError("PostgreSQL's server is not installed (apt-get install postgresql); .ci/run installs it")
    return versions[-1]


class Cluster:
    def __init__(self):
        self.bin = postgres_bin()
        self.directory = tempfile.mkdtemp(prefix="deployctl-pg-")
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if os.getuid() == 0:
            subprocess.run(["chown", "postgres:postgres", self.directory], check=True)
        self.data = os.path.join(self.directory, "data")
        subprocess.run([*self.as_postgres, f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--locale=C", "--no-sync"], check=True, capture_output=True)
        self.start()

    def start(self):
        options = f"-k {self.directory} -c listen_addresses='' -c max_connections=300 -c fsync=off -c synchronous_commit=off"
        subprocess.run([*self.as_postgres, f"{self.bin}/pg_ctl", "-D", self.data, "-o", options, "-l",
                        os.path.join(self.directory, "server.log"), "-w", "start"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self.pid = int(open(os.path.join(self.data, "postmaster.pid")).readline())

    def restart(self):
        """`pg_ctl restart -m fast`: every session is ended, the server comes back on the same socket."""
        # The server's output goes to its log (-l), not to pg_ctl's: the postmaster would hold our pipe open forever.
        subprocess.run([*self.as_postgres, f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-l",
                        os.path.join(self.directory, "server.log"), "restart"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        self.pid = int(open(os.path.join(self.data, "postmaster.pid")).readline())

    def psql(self, sql, database="postgres"):
        result = subprocess.run([f"{self.bin}/psql", "-h", self.directory, "-U", "postgres", "-XAtqc", sql, database],
                                capture_output=True, text=True, check=True)
        return result.stdout.strip()

    def url(self, database):
        return f"postgresql:///{database}?host={self.directory}&user=postgres"

    def stop(self):
        # SIGINT: PostgreSQL's fast shutdown; the postmaster ends its own children.
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        for _ in range(200):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        subprocess.run(["rm", "-rf", self.directory])


class Replica(Server):
    """`deployctl server --database` on 127.0.0.1, sharing its TLS and artifact directories with its siblings."""

    def __init__(self, shared, extra_args=(), start=True):
        self.shared = shared
        self.directory = tempfile.mkdtemp(prefix="deployctl-replica-")
        self.keys = shared.keys
        self.extra_args = extra_args
        self.stderr_path = os.path.join(self.directory, "server.log")
        self.stderr = open(self.stderr_path, "w")
        self.process = subprocess.Popen(
            [BINARY, "server", "--database", shared.url, "--state", os.path.join(self.directory, "unused.db"),
             "--tls-dir", shared.tls, "--artifacts-dir", shared.artifacts, "--listen", "127.0.0.1:0", *extra_args],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        if start:
            self.wait_started()

    def wait_started(self):
        return self.read_start_line()

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.stderr.close()


class Shared:
    """What a test's replicas share: a fresh database, its keys, the TLS and artifact directories."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.directory = tempfile.mkdtemp(prefix="deployctl-shared-")
        self.database = "t_" + uuid.uuid4().hex[:12]
        cluster.psql(f"CREATE DATABASE {self.database}")
        self.url = cluster.url(self.database)
        self.tls = os.path.join(self.directory, "tls")
        self.artifacts = os.path.join(self.directory, "artifacts")
        self.keys = {}
        for role in ROLES:
            out = deployctl("create-access-key", "--database", self.url, "--user-name", f"test-{role}", "--role", role).stdout
            self.keys[role] = json.loads(out)["AccessKey"]
        self.replicas = []

    def replica(self, extra_args=(), start=True):
        replica = Replica(self, extra_args, start=start)
        self.replicas.append(replica)
        return replica

    def sql(self, statement):
        return self.cluster.psql(statement, self.database)

    def close(self):
        codes = []
        for replica in self.replicas:
            if replica.process.poll() is None:
                codes.append(replica.stop())
        subprocess.run(["rm", "-rf", self.directory, *[r.directory for r in self.replicas]])
        return codes


@pytest.fixture(scope="session")
def cluster():
    c = Cluster()
    yield c
    c.stop()


@pytest.fixture
def shared(cluster):
    s = Shared(cluster)
    yield s
    codes = s.close()
    assert all(code == 0 for code in codes), f"a replica exited {codes} after SIGTERM"
