"""`deployctl server` itself: its start line, its certificates across restarts, its refusals."""
import os
import re
import signal
import subprocess
import tempfile

import requests

from conftest import BINARY, Server, deployctl


def test_the_ca_is_made_once_and_reused_across_restarts():
    first = Server()
    try:
        ca = open(first.ca).read()
        assert first.ca == os.path.join(first.directory, "tls", "ca.pem")
        assert oct(os.stat(os.path.join(first.directory, "tls")).st_mode & 0o777) == "0o700"
        for key in ("ca-key.pem", "server-key.pem"):
            assert oct(os.stat(os.path.join(first.directory, "tls", key)).st_mode & 0o777) == "0o600"
        assert first.stop() == 0
        again = subprocess.Popen([BINARY, "server", "--state", first.state, "--listen", "127.0.0.1:0", "--tls-san", "deploy.example.com"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = again.stdout.readline()
        url = re.search(r"serving (\S+)", line).group(1)
        assert open(first.ca).read() == ca
        # A client that trusted the CA before trusts the reissued server certificate (it gained a name).
        key = first.keys["admin"]
        assert requests.get(url + "/metrics", verify=first.ca, timeout=30,
                            headers={"Authorization": f"Bearer {key['AccessKeyId']}:{key['SecretAccessKey']}"}).status_code == 200
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) == 0
    finally:
        subprocess.run(["rm", "-rf", first.directory])


def test_plain_http_is_refused_off_loopback_and_served_on_it():
    directory = tempfile.mkdtemp(prefix="deployctl-plain-")
    state = os.path.join(directory, "state.db")
    try:
        refused = deployctl("server", "--state", state, "--plain-http", "--listen", "0.0.0.0:0", check=False)
        assert refused.returncode == 252 and "loopback" in refused.stderr
        mixed = deployctl("server", "--state", state, "--plain-http", "--tls-san", "x", check=False)
        assert mixed.returncode == 252
        bad = deployctl("server", "--state", state, "--listen", "nowhere", check=False)
        assert bad.returncode == 252 and "HOST:PORT" in bad.stderr
        process = subprocess.Popen([BINARY, "server", "--state", state, "--plain-http", "--listen", "127.0.0.1:0"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = process.stdout.readline()
        assert "serving http://127.0.0.1:" in line and "plain HTTP" in line
        url = re.search(r"serving (\S+)", line).group(1)
        # No keys yet: the server says how to make one, and refuses every request.
        assert requests.post(url + "/", headers={"X-Amz-Target": "CodeDeploy_20141006.ListApplications"}, data=b"{}",
                             timeout=30).status_code == 403
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "create-access-key" in process.stderr.read()
    finally:
        subprocess.run(["rm", "-rf", directory])


def test_the_server_refuses_its_own_flags_when_remote():
    result = deployctl("server", "--endpoint-url", "https://127.0.0.1:1", check=False)
    assert result.returncode == 252 and "--endpoint-url is not accepted" in result.stderr
