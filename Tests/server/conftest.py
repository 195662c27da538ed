"""A real `deployctl server` (TLS with its own CA) on 127.0.0.1, driven by the real aws CLI, boto3 and raw requests.

Each fixture starts the built binary on a fresh state file with one key per role, reads the URL it prints, and
stops it with SIGTERM by its PID (expecting exit 0: in-flight requests drained).
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

import boto3
import botocore.config
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("DEPLOYCTL_BIN", os.path.join(ROOT, ".build", "debug", "deployctl"))
ROLES = ("admin", "deployer", "read-only")


def deployctl(*args, env=None, check=True, timeout=120):
    result = subprocess.run([BINARY, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"deployctl {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


class Server:
    """A running server and what a client needs to reach it."""

    def __init__(self, extra_args=()):
        self.directory = tempfile.mkdtemp(prefix="deployctl-server-")
        self.state = os.path.join(self.directory, "state.db")
        self.keys = {}
        for role in ROLES:
            out = deployctl("create-access-key", "--state", self.state, "--user-name", f"test-{role}", "--role", role).stdout
            self.keys[role] = json.loads(out)["AccessKey"]
        self.stderr_path = os.path.join(self.directory, "server.log")
        self.stderr = open(self.stderr_path, "w")
        self.process = subprocess.Popen(
            [BINARY, "server", "--state", self.state, "--listen", "127.0.0.1:0", *extra_args],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.read_start_line()

    def read_start_line(self):
        """Reads the one line the server prints when it serves: its URL and CA file."""
        line = self.process.stdout.readline()
        self.start_line = line
        match = re.search(r"serving (\S+)(?: \(CA: (\S+)\))?", line)
        if not match:
            self.process.kill()
            raise AssertionError(f"deployctl server did not start: {line!r}; {open(self.stderr_path).read()}")
        self.url = match.group(1)
        self.ca = match.group(2).rstrip(")") if match.group(2) else None
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def env(self, role="admin", **overrides):
        """An environment for the aws CLI or deployctl acting with `role`'s key against this server."""
        key = self.keys[role]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
        env.update({
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CA_BUNDLE": self.ca or "",
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": "",
        })
        env.update(overrides)
        return env

    def aws(self, *args, role="admin", env=None, timeout=300):
        """Runs the real aws CLI against this server; returns the CompletedProcess."""
        return subprocess.run(["aws", *args, "--endpoint-url", self.url], capture_output=True, text=True,
                              env=env or self.env(role), timeout=timeout)

    def client(self, service="codedeploy", role="admin", secret=None, key_id=None):
        key = self.keys[role]
        return boto3.session.Session().client(
            service, endpoint_url=self.url, region_name="us-east-1", verify=self.ca,
            aws_access_key_id=key_id or key["AccessKeyId"], aws_secret_access_key=secret or key["SecretAccessKey"],
            config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))

    def log(self):
        self.stderr.flush()
        return open(self.stderr_path).read()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("deployctl server did not stop within 30 s of SIGTERM")
        self.stderr.close()
        return self.process.returncode


@pytest.fixture
def server():
    s = Server()
    yield s
    code = s.stop()
    subprocess.run(["rm", "-rf", s.directory])
    assert code == 0, f"deployctl server exited {code} after SIGTERM"


@pytest.fixture(scope="module")
def shared_server():
    s = Server()
    yield s
    code = s.stop()
    subprocess.run(["rm", "-rf", s.directory])
    assert code == 0, f"deployctl server exited {code} after SIGTERM"
