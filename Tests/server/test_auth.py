"""SigV4 and roles on `deployctl server`: requests signed the way botocore signs them, then broken one way each;
keys refused by role through the aws CLI. Nothing a refused request asked for happens."""
import datetime
import json

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import requests

TARGET = "CodeDeploy_20141006."


def signed(server, operation, body, role="admin", secret=None, key_id=None, when=None, service="codedeploy"):
    """A botocore-signed request (method, url, headers, body), ready to be tampered with."""
    key = server.keys[role]
    credentials = botocore.credentials.Credentials(key_id or key["AccessKeyId"], secret or key["SecretAccessKey"])
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=server.url + "/", data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation})
    signer = botocore.auth.SigV4Auth(credentials, service, "us-east-1")
    if when is not None:
        # SigV4Auth reads the clock through datetime; sign as of `when`.
        original = botocore.auth.datetime.datetime

        class Frozen(original):
            @classmethod
            def utcnow(cls):
                return when

            @classmethod
            def now(cls, tz=None):
                return when.replace(tzinfo=tz) if tz else when

        botocore.auth.datetime.datetime = Frozen
        try:
            signer.add_auth(request)
        finally:
            botocore.auth.datetime.datetime = original
    else:
        signer.add_auth(request)
    return dict(request.headers.items()), body


def send(server, headers, body):
    return requests.post(server.url + "/", headers=headers, data=body, verify=server.ca, timeout=30)


def error(response):
    return response.status_code, response.json().get("__type"), response.json().get("message")


def applications(server):
    return json.loads(server.aws("deploy", "list-applications").stdout)["applications"]


def test_a_correctly_signed_request_is_served(shared_server):
    headers, body = signed(shared_server, "ListApplications", b"{}")
    response = send(shared_server, headers, body)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert response.headers.get("x-amzn-RequestId")


def test_a_wrong_secret_is_an_invalid_signature(shared_server):
    headers, body = signed(shared_server, "CreateApplication", b'{"applicationName": "wrong-secret"}', secret="x" * 40)
    status, code, message = error(send(shared_server, headers, body))
    assert (status, code) == (400, "InvalidSignatureException")
    assert "signature we calculated does not match" in message
    assert "wrong-secret" not in applications(shared_server)


def test_an_unknown_key_is_unrecognized(shared_server):
    headers, body = signed(shared_server, "CreateApplication", b'{"applicationName": "stranger"}', key_id="AKIAUNKNOWNUNKNOWN00")
    assert error(send(shared_server, headers, body))[:2] == (400, "UnrecognizedClientException")
    assert "stranger" not in applications(shared_server)


def test_a_date_more_than_15_minutes_off_is_refused(shared_server):
    for skew in (-16, 16):
        when = datetime.datetime.utcnow() + datetime.timedelta(minutes=skew)
        headers, body = signed(shared_server, "CreateApplication", b'{"applicationName": "skewed"}', when=when)
        status, code, message = error(send(shared_server, headers, body))
        assert (status, code) == (400, "InvalidSignatureException"), message
        assert "Signature expired" in message
    # 14 minutes off is still fine.
    headers, body = signed(shared_server, "ListApplications", b"{}", when=datetime.datetime.utcnow() - datetime.timedelta(minutes=14))
    assert send(shared_server, headers, body).status_code == 200
    assert "skewed" not in applications(shared_server)


def test_a_body_changed_after_signing_is_refused(shared_server):
    headers, _ = signed(shared_server, "CreateApplication", b'{"applicationName": "original"}')
    status, code, _ = error(send(shared_server, headers, b'{"applicationName": "tampered"}'))
    assert (status, code) == (400, "InvalidSignatureException")
    # A signed header changed after signing, too.
    headers, body = signed(shared_server, "ListApplications", b"{}")
    headers["X-Amz-Target"] = TARGET + "DeleteApplication"
    assert error(send(shared_server, headers, b'{"applicationName": "x"}'))[1] == "InvalidSignatureException"
    assert "tampered" not in applications(shared_server) and "original" not in applications(shared_server)


def test_missing_authentication_is_refused(shared_server):
    response = requests.post(shared_server.url + "/", data=b"{}", verify=shared_server.ca, timeout=30,
                             headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + "ListApplications"})
    assert error(response)[:2] == (403, "MissingAuthenticationTokenException")
    headers, body = signed(shared_server, "ListApplications", b"{}")
    del headers["X-Amz-Date"]
    assert error(send(shared_server, headers, body))[1] == "InvalidSignatureException"
    # A signature for another service (S3's) does not open the API.
    headers, body = signed(shared_server, "ListApplications", b"{}", service="s3")
    assert error(send(shared_server, headers, body))[1] == "InvalidSignatureException"


def test_the_aws_cli_with_a_wrong_secret_gets_the_aws_error(shared_server):
    result = shared_server.aws("deploy", "list-applications",
                               env=shared_server.env(AWS_SECRET_ACCESS_KEY="definitely-not-the-secret-000"))
    assert result.returncode == 255
    assert "An error occurred (InvalidSignatureException) when calling the ListApplications operation" in result.stderr


def test_secrets_never_reach_the_access_log(shared_server):
    shared_server.aws("deploy", "list-applications")
    log = shared_server.log()
    assert "ListApplications" in log
    for key in shared_server.keys.values():
        assert key["SecretAccessKey"] not in log


def test_roles_bound_what_a_key_may_call(shared_server):
    s = shared_server
    assert s.aws("deploy", "create-application", "--application-name", "roles-app").returncode == 0
    reader = s.aws("deploy", "create-application", "--application-name", "by-reader", role="read-only")
    assert reader.returncode == 255
    assert "An error occurred (AccessDeniedException) when calling the CreateApplication operation" in reader.stderr
    assert s.aws("deploy", "get-application", "--application-name", "roles-app", role="read-only").returncode == 0
    deleting = s.aws("deploy", "delete-application", "--application-name", "roles-app", role="deployer")
    assert "(AccessDeniedException)" in deleting.stderr
    assert "roles-app" in applications(s) and "by-reader" not in applications(s)
    # S3: a read-only key reads but does not upload; a deployer uploads but does not delete.
    path = s.directory + "/role.bin"
    open(path, "wb").write(b"role test")
    up = s.aws("s3", "cp", path, "s3://releases/role.bin", "--only-show-errors", role="read-only")
    assert up.returncode != 0 and "AccessDenied" in up.stderr, up.stderr
    assert s.aws("s3", "cp", path, "s3://releases/role.bin", "--only-show-errors", role="deployer").returncode == 0
    assert s.aws("s3", "cp", "s3://releases/role.bin", s.directory + "/back.bin", "--only-show-errors", role="read-only").returncode == 0
    removing = s.aws("s3", "rm", "s3://releases/role.bin", role="deployer")
    assert removing.returncode != 0 and "AccessDenied" in removing.stderr
    assert s.aws("s3", "rm", "s3://releases/role.bin").returncode == 0


def test_a_deactivated_key_stops_working(shared_server):
    s = shared_server
    created = json.loads(s_deployctl(s, "create-access-key", "--user-name", "short-lived", "--role", "admin").stdout)["AccessKey"]
    env = s.env(AWS_ACCESS_KEY_ID=created["AccessKeyId"], AWS_SECRET_ACCESS_KEY=created["SecretAccessKey"])
    assert s.aws("deploy", "list-applications", env=env).returncode == 0
    s_deployctl(s, "update-access-key", "--access-key-id", created["AccessKeyId"], "--status", "Inactive")
    import time
    time.sleep(2.5)  # the server remembers keys until it sees a change; another process's write within a second
    refused = s.aws("deploy", "list-applications", env=env)
    assert "(UnrecognizedClientException)" in refused.stderr


def s_deployctl(server, *args):
    from conftest import deployctl
    return deployctl(*args, "--state", server.state)
