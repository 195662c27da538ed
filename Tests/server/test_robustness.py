"""Bad input and bad clients: clear AWS errors, nothing lost, and the server stays up and answers the next request."""
import concurrent.futures
import json
import socket
import ssl
import threading
import time

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import requests

from test_auth import error, send, signed


def still_serving(server):
    result = server.aws("deploy", "list-applications")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["applications"]


def test_malformed_json_is_a_serialization_error(shared_server):
    for body in (b"{not json", b"[1, 2]", b'{"applicationName": "x"', b"\xff\xfe"):
        headers, _ = signed(shared_server, "CreateApplication", body)
        status, code, message = error(send(shared_server, headers, body))
        assert (status, code) == (400, "SerializationException"), (body, message)
    headers, body = signed(shared_server, "CreateApplication", b'{"applicationName": 42}')
    assert error(send(shared_server, headers, body))[:2] == (400, "ValidationException")
    still_serving(shared_server)


def test_an_unknown_target_is_an_unknown_operation(shared_server):
    for operation in ("NoSuchOperation", "createApplication", ""):
        headers, body = signed(shared_server, operation, b"{}")
        status, code, _ = error(send(shared_server, headers, body))
        assert (status, code) == (400, "UnknownOperationException"), operation
    headers, body = signed(shared_server, "ListApplications", b"{}")
    headers["X-Amz-Target"] = "DynamoDB_20120810.ListTables"
    # The target is signed: changing it breaks the signature first.
    assert error(send(shared_server, headers, body))[1] == "InvalidSignatureException"


def test_a_body_over_1_mib_is_refused_without_reading_it_all(shared_server):
    body = b'{"applicationName": "' + b"a" * (1 << 20) + b'"}'
    headers, _ = signed(shared_server, "CreateApplication", body)
    response = send(shared_server, headers, body)
    assert response.status_code == 413
    assert response.json()["__type"] == "SerializationException"
    still_serving(shared_server)


def raw_tls(server):
    context = ssl.create_default_context(cafile=server.ca)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    return context.wrap_socket(sock, server_hostname="127.0.0.1")


def signed_bytes(server, operation, body):
    headers, body = signed(server, operation, body)
    lines = [f"POST / HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_slow_and_dropped_clients_change_nothing_and_block_no_one(shared_server):
    s = shared_server
    # A client that sends half its headers and stalls; another that sends half a body and disappears.
    stalled = raw_tls(s)
    stalled.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Tar")
    request = signed_bytes(s, "CreateApplication", b'{"applicationName": "half-sent"}')
    dropped = raw_tls(s)
    dropped.sendall(request[: len(request) - 10])
    dropped.close()
    # A client that connects and sends nothing at all.
    idle = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    started = time.monotonic()
    applications = still_serving(s)
    assert time.monotonic() - started < 10
    assert "half-sent" not in applications
    # The stalled client is still connected, and the server answers it when it finishes.
    stalled.sendall(signed_bytes(s, "ListApplications", b"{}")[len(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Tar"):])
    answer = stalled.recv(65536)
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    stalled.close()
    idle.close()


def test_a_thousand_concurrent_connections(shared_server):
    s = shared_server
    count = 1000
    opened = []
    # 1,000 connections open at once, TLS handshakes done, each then sends one signed request.
    with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
        opened = list(pool.map(lambda _: raw_tls(s), range(count)))
    request = signed_bytes(s, "ListApplications", b"{}")
    statuses = []
    lock = threading.Lock()

    def ask(connection):
        connection.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
        with lock:
            statuses.append(data.split(b" ", 2)[1] if data.startswith(b"HTTP/1.1 ") else b"none")
        connection.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
        list(pool.map(ask, opened))
    assert statuses.count(b"200") == count, {x: statuses.count(x) for x in set(statuses)}
    still_serving(s)


def test_metrics_need_a_key_and_count_requests(shared_server):
    """Metrics are for an admin (or metrics) key; other roles are told so (test_attacks.py checks every role)."""
    s = shared_server
    still_serving(s)
    assert requests.get(s.url + "/metrics", verify=s.ca, timeout=30).status_code == 401
    key = s.keys["admin"]
    wrong = requests.get(s.url + "/metrics", verify=s.ca, timeout=30, headers={"Authorization": f"Bearer {key['AccessKeyId']}:nope"})
    assert wrong.status_code == 401
    reader = s.keys["read-only"]
    refused = requests.get(s.url + "/metrics", verify=s.ca, timeout=30,
                           headers={"Authorization": f"Bearer {reader['AccessKeyId']}:{reader['SecretAccessKey']}"})
    assert refused.status_code == 403 and "metrics or admin" in refused.text
    metrics = requests.get(s.url + "/metrics", verify=s.ca, timeout=30,
                           headers={"Authorization": f"Bearer {key['AccessKeyId']}:{key['SecretAccessKey']}"})
    assert metrics.status_code == 200
    text = metrics.text
    assert 'deployctl_requests_total{operation="ListApplications",status="200"}' in text
    assert 'deployctl_request_duration_seconds_bucket{operation="ListApplications",le="0.01"}' in text


def test_concurrent_writers_through_the_server_and_the_local_cli_never_see_a_lock(shared_server):
    """Writes are serialized inside the server; a local deployctl on the same state file waits its turn."""
    import subprocess
    from conftest import BINARY
    s = shared_server
    client = s.client()
    local = [subprocess.Popen([BINARY, "create-application", "--application-name", f"local-{i}", "--state", s.state],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(10)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda i: client.create_application(applicationName=f"remote-{i}")["applicationId"], range(200)))
    assert len(set(answers)) == 200
    for process in local:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    names = set(still_serving(s))
    assert {f"remote-{i}" for i in range(200)} <= names and {f"local-{i}" for i in range(10)} <= names
