"""Issue 22: `deployctl server` attacked through the wire, one test per class of attack, each against a real server
over TLS. A refused request must change nothing: every test checks the state it tried to change afterwards."""
import base64
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import uuid

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests

from conftest import Server, deployctl
from test_remote_agents import make_app

COMMAND_TARGET = "CodeDeployCommandService_v20141006."
API_TARGET = "CodeDeploy_20141006."


def sign(server, key, target, body, service="codedeploy", sign_target=True):
    """A botocore-signed POST; with sign_target False, X-Amz-Target is added after signing (not covered)."""
    credentials = botocore.credentials.Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if sign_target:
        headers["X-Amz-Target"] = target
    request = botocore.awsrequest.AWSRequest(method="POST", url=server.url + "/", data=body, headers=headers)
    botocore.auth.SigV4Auth(credentials, service, "us-east-1").add_auth(request)
    headers = dict(request.headers.items())
    if not sign_target:
        headers["X-Amz-Target"] = target
    return headers


def call(server, key, operation, body, service="codedeploy-commands", target_prefix=COMMAND_TARGET, sign_target=True):
    text = json.dumps(body)
    headers = sign(server, key, target_prefix + operation, text, service=service, sign_target=sign_target)
    response = requests.post(server.url + "/", headers=headers, data=text, verify=server.ca, timeout=60)
    return response.status_code, response.json() if response.content else {}


def remote(server, *args, role="admin", check=True):
    return deployctl(*args, "--endpoint-url", server.url, env=server.env(role), check=check)


class Fleet:
    """A server with two registered hosts (web-1, web-2), their keys, and a pushed bundle."""

    def __init__(self, extra_args=()):
        self.server = Server(extra_args=("--poll-hold", "1", *extra_args))
        s = self.server
        self.hosts = {}
        for name in ("web-1", "web-2"):
            out = deployctl("register", "--state", s.state, "--instance-name", name, "--tags", "Key=fleet,Value=web",
                            "--endpoint-url", s.url, "--output-dir", os.path.join(s.directory, name)).stdout
            registration = json.loads(out)
            conf = open(os.path.join(s.directory, name, "codedeploy.onpremises.yml")).read()
            secret = next(line.split(": ", 1)[1] for line in conf.splitlines() if line.startswith("aws_secret_access_key"))
            self.hosts[name] = {"AccessKeyId": registration["AccessKeyId"], "SecretAccessKey": secret,
                                "arn": registration["IamUserArn"]}
        remote(s, "create-application", "--application-name", "web")
        remote(s, "create-deployment-group", "--application-name", "web", "--deployment-group-name", "fleet",
               "--on-premises-instance-tag-filters", "Key=fleet,Value=web,Type=KEY_AND_VALUE",
               "--deployment-config-name", "CodeDeployDefault.AllAtOnce")
        app = os.path.join(s.directory, "app")
        make_app(app, {"AfterInstall": ("ok.sh", "true", 30)})
        remote(s, "push", "--application-name", "web", "--s3-location", "s3://releases/v1.zip", "--source", app)

    def deploy(self):
        return remote(self.server, "create-deployment", "--application-name", "web", "--deployment-group-name", "fleet",
                      "--s3-location", "bucket=releases,key=v1.zip,bundleType=zip", "--output", "text").stdout.strip()

    def poll(self, name):
        host = self.hosts[name]
        for _ in range(20):
            status, answer = call(self.server, host, "PollHostCommand", {"HostIdentifier": host["arn"]})
            assert status == 200, answer
            if answer.get("HostCommand"):
                return answer["HostCommand"]
        raise AssertionError(f"no command for {name}")

    def events(self, deployment, name):
        out = remote(self.server, "get-deployment-instance", "--deployment-id", deployment, "--instance-id", name).stdout
        return {e["lifecycleEventName"]: e["status"] for e in json.loads(out)["instanceSummary"]["lifecycleEvents"]}

    def stop(self):
        assert self.server.stop() == 0
        subprocess.run(["rm", "-rf", self.server.directory])


@pytest.fixture(scope="module")
def fleet():
    f = Fleet()
    yield f
    f.stop()


def forged(command_id, deployment_id, instance):
    body = json.dumps(["deployctl.HostCommandIdentifier",
                       {"commandId": command_id, "deploymentId": deployment_id, "instanceName": instance}],
                      separators=(",", ":"))
    return base64.b64encode(body.encode()).decode()


def decoded(identifier):
    return json.loads(base64.b64decode(identifier))[1]


# MARK: Authorization (items 1 and 2)

def test_an_instance_key_never_acts_on_another_instances_command(fleet):
    """Every host-command operation that takes a command back, with web-1's key and web-2's command: as handed out,
    and forged to name web-1 (the instance check alone would pass) or another deployment. All refused, nothing
    changes, and the refusal is logged with both identities."""
    deployment = fleet.deploy()
    command = fleet.poll("web-2")
    own = fleet.poll("web-1")
    theirs = decoded(command["HostCommandIdentifier"])
    attacker = fleet.hosts["web-1"]
    identifiers = [
        command["HostCommandIdentifier"],
        forged(theirs["commandId"], theirs["deploymentId"], "web-1"),
        forged(theirs["commandId"], "d-XXXXXXXXX", "web-1"),
        forged(decoded(own["HostCommandIdentifier"])["commandId"], "d-XXXXXXXXX", "web-1"),
    ]
    operations = {
        "PutHostCommandAcknowledgement": {"Diagnostics": {"Format": "JSON", "Payload": "{}"}},
        "PostHostCommandUpdate": {"Diagnostics": {"Format": "JSON", "Payload": json.dumps({"note": "pwned"})}},
        "PutHostCommandComplete": {"CommandStatus": "Succeeded",
                                   "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"error_code": 0})}},
    }
    before = fleet.events(deployment, "web-2")
    for operation, extra in operations.items():
        for identifier in identifiers:
            status, answer = call(fleet.server, attacker, operation, {"HostCommandIdentifier": identifier, **extra})
            assert (status, answer.get("__type")) == (400, "AccessDeniedException"), (operation, answer)
    assert fleet.events(deployment, "web-2") == before
    assert before[command["CommandName"]] == "InProgress"
    # Another instance's host identifier, and another instance's deployment specification.
    status, answer = call(fleet.server, attacker, "PollHostCommand", {"HostIdentifier": fleet.hosts["web-2"]["arn"]})
    assert answer.get("__type") == "AccessDeniedException"
    log = fleet.server.log()
    assert "host command refused" in log and attacker["AccessKeyId"] in log and "is web-2's in deployment" in log
    # The owner still completes its command.
    for name, cmd in (("web-2", command), ("web-1", own)):
        key = fleet.hosts[name]
        status, answer = call(fleet.server, key, "PutHostCommandComplete", {
            "HostCommandIdentifier": cmd["HostCommandIdentifier"], "CommandStatus": "Failed",
            "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"error_code": 4, "script_name": "", "message": "stop",
                                                                     "log": ""})}})
        assert status == 200, answer
    assert fleet.events(deployment, "web-2")[command["CommandName"]] == "Failed"


def test_a_specification_is_only_for_a_target_of_its_deployment(fleet):
    """GetDeploymentSpecification of a deployment the caller is not a target of: refused."""
    s = fleet.server
    deployctl("register", "--state", s.state, "--instance-name", "db-1", "--tags", "Key=fleet,Value=db",
              "--endpoint-url", s.url, "--output-dir", os.path.join(s.directory, "db-1"))
    registration = json.loads(deployctl("list-access-keys", "--state", s.state, "--user-name", "db-1").stdout)
    key_id = registration["AccessKeyMetadata"][0]["AccessKeyId"]
    conf = open(os.path.join(s.directory, "db-1", "codedeploy.onpremises.yml")).read()
    secret = next(line.split(": ", 1)[1] for line in conf.splitlines() if line.startswith("aws_secret_access_key"))
    outsider = {"AccessKeyId": key_id, "SecretAccessKey": secret}
    deployment = json.loads(remote(s, "list-deployments").stdout)["deployments"][0]
    execution = f"deployctl/local/Prod/arn:aws:codedeploy:local:000000000000:deployment/{deployment}"
    arn = next(line.split(": ", 1)[1] for line in conf.splitlines() if line.startswith("iam_user_arn"))
    status, answer = call(s, outsider, "GetDeploymentSpecification",
                          {"DeploymentExecutionId": execution, "HostIdentifier": arn})
    assert status == 400 and "DeploymentSpecification" not in answer, answer


def test_x_amz_target_must_be_signed(fleet):
    """A signature that does not cover X-Amz-Target could be replayed as any operation: refused on both services."""
    admin = fleet.server.keys["admin"]
    status, answer = call(fleet.server, admin, "ListApplications", {}, service="codedeploy", target_prefix=API_TARGET,
                          sign_target=False)
    assert (status, answer.get("__type")) == (400, "InvalidSignatureException"), answer
    assert "X-Amz-Target" in answer["message"]
    host = fleet.hosts["web-1"]
    status, answer = call(fleet.server, host, "PollHostCommand", {"HostIdentifier": host["arn"]}, sign_target=False)
    assert (status, answer.get("__type")) == (400, "InvalidSignatureException"), answer


def test_metrics_are_for_metrics_and_admin_keys_only(fleet):
    s = fleet.server
    made = json.loads(deployctl("create-access-key", "--state", s.state, "--user-name", "prometheus", "--role", "metrics").stdout)
    scraper = made["AccessKey"]

    def scrape(key):
        return requests.get(s.url + "/metrics", verify=s.ca, timeout=10,
                            headers={"Authorization": f"Bearer {key['AccessKeyId']}:{key['SecretAccessKey']}"}).status_code

    assert scrape(scraper) == 200
    assert scrape(s.keys["admin"]) == 200
    for role in ("deployer", "read-only"):
        assert scrape(s.keys[role]) == 403, role
    assert scrape(fleet.hosts["web-1"]) == 403
    assert requests.get(s.url + "/metrics", verify=s.ca, timeout=10).status_code == 401
    # A metrics key calls nothing else.
    status, answer = call(s, scraper, "ListApplications", {}, service="codedeploy", target_prefix=API_TARGET)
    assert answer.get("__type") == "AccessDeniedException"


def s3_client(server, key):
    import boto3
    import botocore.config
    return boto3.session.Session().client(
        "s3", endpoint_url=server.url, region_name="us-east-1", verify=server.ca,
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
        config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


def error_code(call_):
    import botocore.exceptions
    try:
        call_()
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    return None


def test_an_instance_key_reads_only_the_bundle_of_its_own_deployment(fleet):
    s = fleet.server
    admin = s3_client(s, s.keys["admin"])
    admin.put_object(Bucket="releases", Key="secret.txt", Body=b"database password")
    web1 = s3_client(s, fleet.hosts["web-1"])
    assert error_code(lambda: web1.get_object(Bucket="releases", Key="secret.txt")) == "AccessDenied"
    assert error_code(lambda: web1.list_objects_v2(Bucket="releases")) == "AccessDenied"
    assert error_code(lambda: web1.put_object(Bucket="releases", Key="x", Body=b"x")) == "AccessDenied"
    # Between deployments not even the bundle; during one, the bundle and only it.
    for d in json.loads(remote(s, "list-deployments", "--include-only-statuses", "InProgress").stdout)["deployments"]:
        remote(s, "stop-deployment", "--deployment-id", d)
    assert error_code(lambda: web1.get_object(Bucket="releases", Key="v1.zip")) == "AccessDenied"
    deployment = fleet.deploy()
    assert web1.get_object(Bucket="releases", Key="v1.zip")["Body"].read()[:2] == b"PK"
    assert error_code(lambda: web1.get_object(Bucket="releases", Key="secret.txt")) == "AccessDenied"
    remote(s, "stop-deployment", "--deployment-id", deployment)
    # A read-only key writes nothing.
    reader = s3_client(s, s.keys["read-only"])
    assert error_code(lambda: reader.put_object(Bucket="releases", Key="y", Body=b"y")) == "AccessDenied"
    assert error_code(lambda: reader.create_multipart_upload(Bucket="releases", Key="y")) == "AccessDenied"
    assert error_code(lambda: reader.delete_object(Bucket="releases", Key="secret.txt")) == "AccessDenied"
    assert admin.get_object(Bucket="releases", Key="secret.txt")["Body"].read() == b"database password"


def test_an_upload_id_works_only_for_its_own_bucket_and_key(fleet):
    """UploadPart, CompleteMultipartUpload and AbortMultipartUpload with another object's upload id: NoSuchUpload,
    and the upload is untouched."""
    s3 = s3_client(fleet.server, fleet.server.keys["deployer"])
    s3.create_bucket(Bucket="other")
    upload = s3.create_multipart_upload(Bucket="releases", Key="big.bin")["UploadId"]
    part = s3.upload_part(Bucket="releases", Key="big.bin", UploadId=upload, PartNumber=1, Body=b"a" * 1000)
    for bucket, key in (("releases", "elsewhere.bin"), ("other", "big.bin")):
        assert error_code(lambda: s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1,
                                                 Body=b"evil")) == "NoSuchUpload"
        assert error_code(lambda: s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})) == "NoSuchUpload"
        assert error_code(lambda: s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)) == "NoSuchUpload"
    s3.complete_multipart_upload(Bucket="releases", Key="big.bin", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket="releases", Key="big.bin")["Body"].read() == b"a" * 1000
    assert error_code(lambda: s3.head_object(Bucket="releases", Key="elsewhere.bin")) == "404"


# MARK: Resource exhaustion (items 3, 5, 6)

def raw_post(server, target, body=b"{}"):
    return requests.post(server.url + "/", data=body, verify=server.ca, timeout=10,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})


def test_unauthenticated_invented_targets_create_no_labels_and_no_log_growth(fleet):
    s = fleet.server
    marks = [uuid.uuid4().hex for _ in range(30)]
    with requests.Session() as session:
        for index, mark in enumerate(marks):
            prefix = (COMMAND_TARGET, API_TARGET, "Deployctl_20261130.")[index % 3]
            response = session.post(s.url + "/", data=b"{}", verify=s.ca, timeout=10,
                                    headers={"X-Amz-Target": prefix + mark})
            assert response.status_code in (400, 403)
    metrics = requests.get(s.url + "/metrics", verify=s.ca, timeout=10, headers={
        "Authorization": f"Bearer {s.keys['admin']['AccessKeyId']}:{s.keys['admin']['SecretAccessKey']}"}).text
    log = s.log()
    for mark in marks:
        assert mark not in metrics
        assert mark not in log
    assert 'operation="Unknown"' in metrics
    assert "deployctl_blocking_queue_length" in metrics and "deployctl_connections" in metrics
    # Signed, with a key: the target text is cut and escaped in the error, never a label.
    status, answer = call(s, s.keys["admin"], 'Nope"\\' + "x" * 5000, {}, service="codedeploy", target_prefix=API_TARGET)
    assert answer["__type"] == "UnknownOperationException", answer
    assert len(answer["message"]) < 300 and 'Nope\\x22\\x5c' in answer["message"], answer["message"]


def test_the_start_line_names_the_raised_open_file_limit_and_the_connection_cap():
    s = Server(extra_args=("--max-connections", "40"))
    try:
        assert "open files" in s.start_line and "max connections 40" in s.start_line, s.start_line
    finally:
        code = s.stop()
        subprocess.run(["rm", "-rf", s.directory])
    assert code == 0


def test_connections_over_the_cap_are_refused_at_once_and_slow_clients_are_closed():
    s = Server(extra_args=("--max-connections", "20", "--header-timeout", "2"))
    sockets = []
    try:
        for _ in range(20):
            sockets.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
        time.sleep(0.3)
        # The 21st: closed at once (no hang for the 60 s of an idle timeout).
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(s.url + "/metrics", verify=s.ca, timeout=20)
        assert time.monotonic() - started < 2
        # The idle ones never sent a header: closed after --header-timeout, and the server serves again.
        time.sleep(3)
        closed = 0
        for sock in sockets:
            sock.settimeout(1)
            try:
                closed += sock.recv(1) == b""
            except (ConnectionResetError, socket.timeout):
                closed += 1
        assert closed == 20
        response = requests.post(s.url + "/", **signed_kwargs(s, "ListApplications"))
        assert response.status_code == 200
    finally:
        for sock in sockets:
            sock.close()
        code = s.stop()
        subprocess.run(["rm", "-rf", s.directory])
    assert code == 0


def signed_kwargs(server, operation):
    headers = sign(server, server.keys["admin"], API_TARGET + operation, "{}")
    return {"headers": headers, "data": "{}", "verify": server.ca, "timeout": 10}


def test_a_trickled_body_is_closed_and_a_huge_header_refused(fleet):
    s = fleet.server
    context = ssl.create_default_context(cafile=s.ca)
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"PUT /releases/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000000000\r\n\r\n")
            started = time.monotonic()
            closed_after = None
            while time.monotonic() - started < 30:
                try:
                    tls.sendall(b"x")
                    tls.settimeout(1)
                    data = tls.recv(4096)
                    if data == b"" or b"HTTP/1.1" in data:
                        closed_after = time.monotonic() - started
                        break
                except socket.timeout:
                    continue
                except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                    closed_after = time.monotonic() - started
                    break
            assert closed_after is not None and closed_after < 25, closed_after
    response = requests.get(s.url + "/releases/x", headers={"X-Big": "a" * 100_000}, verify=s.ca, timeout=10)
    assert response.status_code in (400, 431)


def test_an_appspec_of_200_mb_is_refused_in_well_under_a_second(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    with open(app / "appspec.yml", "w") as f:
        f.write("version: 0.0\nos: linux\n")
        block = "# " + "x" * 1022 + "\n"
        for _ in range(200 * 1024):
            f.write(block)
    started = time.monotonic()
    result = deployctl("validate", "--source", str(app), check=False)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "larger than 1 MiB" in result.stdout + result.stderr
    assert elapsed < 1.0, elapsed


# MARK: The S3 face (items 7-10)

def test_every_valid_key_is_stored_however_long_or_deep(fleet):
    s3 = s3_client(fleet.server, fleet.server.keys["admin"])
    s3.create_bucket(Bucket="keys")
    keys = ["k" * 300, "é" * 512, "/".join(["d"] * 500), "a/../b", ".hidden", "x//y", "v@v/latest", "n" * 1024]
    for index, key in enumerate(keys):
        s3.put_object(Bucket="keys", Key=key, Body=str(index).encode())
    for index, key in enumerate(keys):
        assert s3.get_object(Bucket="keys", Key=key)["Body"].read() == str(index).encode(), key[:40]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="keys")["Contents"]]
    assert sorted(listed) == sorted(keys)
    assert error_code(lambda: s3.put_object(Bucket="keys", Key="n" * 1025, Body=b"x")) == "KeyTooLongError"
    s3.delete_object(Bucket="keys", Key="k" * 300)
    assert error_code(lambda: s3.head_object(Bucket="keys", Key="k" * 300)) == "404"


def test_a_completion_may_list_10000_parts_but_no_more(fleet):
    s3 = s3_client(fleet.server, fleet.server.keys["deployer"])
    upload = s3.create_multipart_upload(Bucket="releases", Key="parts.bin")["UploadId"]
    etag = s3.upload_part(Bucket="releases", Key="parts.bin", UploadId=upload, PartNumber=1, Body=b"p")["ETag"]
    parts = [{"PartNumber": n, "ETag": etag, "ChecksumCRC32": "AAAAAA=="} for n in range(1, 10_001)]
    started = time.monotonic()
    # Parts 2-10000 were never uploaded: the list is read in full (not MalformedXML) and refused for what it names.
    assert error_code(lambda: s3.complete_multipart_upload(
        Bucket="releases", Key="parts.bin", UploadId=upload, MultipartUpload={"Parts": parts})) == "InvalidPart"
    assert time.monotonic() - started < 5
    too_many = parts + [{"PartNumber": 10_000, "ETag": etag}]
    assert error_code(lambda: s3.complete_multipart_upload(
        Bucket="releases", Key="parts.bin", UploadId=upload, MultipartUpload={"Parts": too_many})) in (
        "InvalidArgument", "InvalidPartOrder")
    s3.complete_multipart_upload(Bucket="releases", Key="parts.bin", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})


def test_a_malformed_escape_is_an_invalid_uri_not_another_operation(fleet):
    """`DELETE /bucket/%zz` (sent as is: requests would re-quote it) must not be DeleteBucket of `bucket`."""
    import http.client
    s = fleet.server
    s3 = s3_client(s, s.keys["admin"])
    s3.create_bucket(Bucket="empty-bucket")
    credentials = botocore.credentials.Credentials(s.keys["admin"]["AccessKeyId"], s.keys["admin"]["SecretAccessKey"])
    context = ssl.create_default_context(cafile=s.ca)
    for method in ("DELETE", "GET", "PUT"):
        request = botocore.awsrequest.AWSRequest(method=method, url=s.url + "/empty-bucket/%zz", data=b"",
                                                 headers={"X-Amz-Content-SHA256": botocore.auth.EMPTY_SHA256_HASH})
        botocore.auth.S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
        connection = http.client.HTTPSConnection("127.0.0.1", s.port, context=context, timeout=10)
        connection.request(method, "/empty-bucket/%zz", body=b"", headers=dict(request.headers.items()))
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status == 400 and b"InvalidURI" in body, (method, body)
    s3.head_bucket(Bucket="empty-bucket")


def test_unfinished_uploads_of_a_killed_server_are_swept_at_start():
    s = Server()
    try:
        incoming = os.path.join(s.directory, "artifacts", ".incoming")
        os.makedirs(incoming, exist_ok=True)
        left = os.path.join(incoming, "upload-left-by-a-crash")
        open(left, "wb").write(b"x" * 1000)
    finally:
        s.stop()
    again = subprocess.Popen([s.process.args[0], "server", "--state", s.state, "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving" in again.stdout.readline()
        assert not os.path.exists(left)
    finally:
        again.terminate()
        _, err = again.communicate(timeout=30)
        subprocess.run(["rm", "-rf", s.directory])
    assert "upload-left-by-a-crash" in err


# MARK: Transactions and conventions (items 13, 15)

def test_register_is_one_transaction_and_names_the_step_that_failed(tmp_path):
    state = str(tmp_path / "state.db")
    long_name = "h" * 90
    out = deployctl("register", "--state", state, "--instance-name", long_name, "--endpoint-url", "http://127.0.0.1:1",
                    "--output-dir", str(tmp_path / "long"))
    assert json.loads(out.stdout)["InstanceName"] == long_name
    eleven = [f"Key=k{i},Value=v" for i in range(11)]
    failed = deployctl("register", "--state", state, "--instance-name", "web-9", "--tags", *eleven,
                       "--endpoint-url", "http://127.0.0.1:1", "--output-dir", str(tmp_path / "w9"), check=False)
    assert failed.returncode == 254
    assert "AddTagsToOnPremisesInstances" in failed.stderr, failed.stderr
    # Nothing was written: the instance is not registered and has no key; a rerun with good tags works.
    listed = json.loads(deployctl("list-on-premises-instances", "--state", state).stdout)["instanceNames"]
    assert "web-9" not in listed
    assert json.loads(deployctl("list-access-keys", "--state", state, "--user-name", "web-9").stdout)["AccessKeyMetadata"] == []
    deployctl("register", "--state", state, "--instance-name", "web-9", "--tags", "Key=k,Value=v",
              "--endpoint-url", "http://127.0.0.1:1", "--output-dir", str(tmp_path / "w9"))
    deployctl("deregister", "--state", state, "--instance-name", "web-9")
    assert json.loads(deployctl("list-access-keys", "--state", state, "--user-name", "web-9").stdout)["AccessKeyMetadata"] == []


def test_short_imported_test_credentials_work_with_a_warning(tmp_path):
    s = Server()
    try:
        made = deployctl("create-access-key", "--state", s.state, "--user-name", "localstack", "--role", "admin",
                         "--access-key-id", "test", "--secret-access-key", "test")
        assert "warning" in made.stderr and "shorter" in made.stderr
        key = {"AccessKeyId": "test", "SecretAccessKey": "test"}
        status, answer = call(s, key, "ListApplications", {}, service="codedeploy", target_prefix=API_TARGET)
        assert status == 200, answer
        bad = deployctl("create-access-key", "--state", s.state, "--user-name", "x", "--access-key-id", "a b",
                        "--secret-access-key", "x", check=False)
        assert bad.returncode == 254 and "ValidationError" in bad.stderr
    finally:
        assert s.stop() == 0
        subprocess.run(["rm", "-rf", s.directory])


def test_register_and_deregister_from_an_operators_machine_over_the_api(fleet, tmp_path):
    """No state file named: the server registers for an admin key (item 14), with DEPLOYCTL_ENDPOINT_URL honoured;
    the CA written for the agent is the one the operator trusts; other roles are refused."""
    s = fleet.server
    env = s.env("admin", DEPLOYCTL_ENDPOINT_URL=s.url)
    out = deployctl("register", "--instance-name", "remote-1", "--tags", "Key=fleet,Value=web",
                    "--output-dir", str(tmp_path / "r1"), env=env)
    registration = json.loads(out.stdout)
    assert registration["InstanceName"] == "remote-1"
    assert open(tmp_path / "r1" / "deployctl-ca.pem").read() == open(s.ca).read()
    conf = open(tmp_path / "r1" / "codedeploy.onpremises.yml").read()
    assert registration["AccessKeyId"] in conf
    listed = json.loads(deployctl("list-access-keys", "--state", s.state, "--user-name", "remote-1").stdout)
    assert [k["AccessKeyId"] for k in listed["AccessKeyMetadata"]] == [registration["AccessKeyId"]]
    # Its key works for its instance: a poll is answered.
    secret = next(line.split(": ", 1)[1] for line in conf.splitlines() if line.startswith("aws_secret_access_key"))
    status, answer = call(s, {"AccessKeyId": registration["AccessKeyId"], "SecretAccessKey": secret}, "PollHostCommand",
                          {"HostIdentifier": registration["IamUserArn"]})
    assert status == 200, answer
    refused = deployctl("register", "--instance-name", "remote-2", "--endpoint-url", s.url, "--output-dir",
                        str(tmp_path / "r2"), env=s.env("deployer"), check=False)
    assert refused.returncode == 254 and "AccessDeniedException" in refused.stderr
    twelve = [f"Key=k{i},Value=v" for i in range(11)]
    failed = deployctl("register", "--instance-name", "remote-3", "--tags", *twelve, "--endpoint-url", s.url,
                       "--output-dir", str(tmp_path / "r3"), env=s.env("admin"), check=False)
    assert failed.returncode == 254 and "AddTagsToOnPremisesInstances operation" in failed.stderr, failed.stderr
    deployctl("deregister", "--instance-name", "remote-1", "--endpoint-url", s.url, env=s.env("admin"))
    listed = json.loads(deployctl("list-access-keys", "--state", s.state, "--user-name", "remote-1").stdout)
    assert listed["AccessKeyMetadata"] == []
