"""`deployctl server` for the benchmarks: an admin key, the server on an ephemeral loopback port, a boto3 client."""
import json
import re
import signal
import subprocess

import boto3
import botocore.config


def start_server(binary, state, extra=()):
    """Creates an admin access key in `state`, then starts `deployctl server` over it on 127.0.0.1 (with the `extra`
    flags). Returns the process, the URL it serves, its CA file and the key (AccessKeyId, SecretAccessKey)."""
    key = json.loads(subprocess.run([binary, "create-access-key", "--state", state, "--user-name", "bench", "--role", "admin"],
                                    capture_output=True, text=True, check=True).stdout)["AccessKey"]
    server = subprocess.Popen([binary, "server", "--state", state, "--listen", "127.0.0.1:0", "--quiet", *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    match = re.search(r"serving (\S+) \(CA: (\S+)\)", server.stdout.readline())
    if not match:
        stop_server(server)
        raise SystemExit("deployctl server did not say where it serves")
    url, ca = match.groups()
    return server, url, ca, key


def codedeploy_client(url, ca, key, region="local"):
    return boto3.session.Session().client(
        "codedeploy", endpoint_url=url, region_name=region, verify=ca, aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"], config=botocore.config.Config(retries={"max_attempts": 1}))


def stop_server(server):
    """Stops the server this script started (by its PID) and returns its exit status."""
    server.send_signal(signal.SIGTERM)
    return server.wait(timeout=60)
