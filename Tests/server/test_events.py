"""The event stream over the server (issue 24): deployctl's ListEvents (what `deployctl events --endpoint-url`
calls) and `GET /events` as Server-Sent Events, with resumption by Last-Event-ID, and who may read it."""
import http.client
import json
import os
import signal
import ssl
import subprocess
import time

from conftest import BINARY, deployctl


def bearer(server, role="read-only"):
    key = server.keys[role]
    return f"Bearer {key['AccessKeyId']}:{key['SecretAccessKey']}"


def connect(server):
    context = ssl.create_default_context(cafile=server.ca)
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=15)


def failed_deployment(server):
    """A deployment of a group that selects no instance: CREATED, then FAILURE, in one request."""
    client = server.client()
    names = {a for a in client.list_applications()["applications"]}
    if "shop" not in names:
        client.create_application(applicationName="shop")
        client.create_deployment_group(applicationName="shop", deploymentGroupName="web", serviceRoleArn="arn:aws:iam::0:role/x",
                                       onPremisesInstanceTagFilters=[{"Key": "nobody", "Type": "KEY_ONLY"}])
    return client.create_deployment(applicationName="shop", deploymentGroupName="web", revision={
        "revisionType": "S3", "s3Location": {"bucket": "b", "key": "k.zip", "bundleType": "zip"}})["deploymentId"]


def read_event(response):
    """The next event of a stream: (id, the event's JSON); comments are skipped."""
    sequence, data = None, None
    while True:
        line = response.readline().decode()
        assert line, "the stream ended"
        if line.startswith("id: "):
            sequence = int(line[4:])
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "\n" and data is not None:
            return sequence, data


def test_events_are_listed_and_resumed_through_the_cli(server):
    deployment = failed_deployment(server)
    out = deployctl("events", "--endpoint-url", server.url, "--deployment-id", deployment, env=server.env("read-only")).stdout
    events = json.loads(out)["events"]
    assert [e["event"]["detail"]["state"] for e in events] == ["CREATED", "FAILURE"]
    assert events[0]["event"]["detail-type"] == "CodeDeploy Deployment State-change Notification"
    assert events[0]["event"]["detail"]["deploymentId"] == deployment
    text = deployctl("events", "--endpoint-url", server.url, "--output", "text", "--after", str(events[0]["sequence"]),
                     env=server.env("read-only")).stdout
    assert text.splitlines() == [f"{events[1]['sequence']} {events[1]['event']['time']} {deployment} shop/web FAILURE"]
    # The same from the state file, byte for byte.
    local = deployctl("events", "--state", server.state, "--deployment-id", deployment).stdout
    assert local == out


def test_follow_prints_each_new_event_as_it_happens(server):
    failed_deployment(server)
    follower = subprocess.Popen([BINARY, "events", "--follow", "--endpoint-url", server.url, "--after", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env("read-only"))
    try:
        time.sleep(1)
        started = time.monotonic()
        deployment = failed_deployment(server)
        first = json.loads(follower.stdout.readline())
        assert first["event"]["detail"]["deploymentId"] == deployment
        assert first["event"]["detail"]["state"] == "CREATED"
        assert time.monotonic() - started < 5, "a held ListEvents answers when the event is written"
        assert json.loads(follower.stdout.readline())["event"]["detail"]["state"] == "FAILURE"
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.wait(timeout=10)


def test_server_sent_events_stream_and_resume_after_the_last_event_id(server):
    first = failed_deployment(server)
    connection = connect(server)
    connection.request("GET", f"/events?deploymentId={first}", headers={"Authorization": bearer(server)})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    created_id, created = read_event(response)
    assert created["detail"]["state"] == "CREATED"
    failed_id, failed = read_event(response)
    assert failed["detail"]["state"] == "FAILURE" and failed_id > created_id
    connection.close()

    # A browser's EventSource reconnects with Last-Event-ID: only what came after it.
    connection = connect(server)
    connection.request("GET", "/events", headers={"Authorization": bearer(server), "Last-Event-ID": str(failed_id)})
    response = connection.getresponse()
    assert response.status == 200
    second = failed_deployment(server)
    sequence, event = read_event(response)
    assert sequence > failed_id
    assert event["detail"]["deploymentId"] == second and event["detail"]["state"] == "CREATED"
    # The stream is still open when the server is asked to stop: it ends, and the server exits 0 (the fixture checks).


def test_the_stream_is_for_keys_that_may_read(server):
    for headers, status in [({}, 401), ({"Authorization": "Bearer AKIAUNKNOWN:nope"}, 401),
                            ({"Authorization": bearer(server), "Last-Event-ID": "not-a-number"}, 400)]:
        connection = connect(server)
        connection.request("GET", "/events", headers=headers)
        response = connection.getresponse()
        assert response.status == status, (headers, response.read())
        connection.close()
    metrics = json.loads(deployctl("create-access-key", "--state", server.state, "--user-name", "scraper", "--role", "metrics").stdout)
    key = metrics["AccessKey"]
    time.sleep(2.5)  # the server's key cache
    connection = connect(server)
    connection.request("GET", "/events", headers={"Authorization": f"Bearer {key['AccessKeyId']}:{key['SecretAccessKey']}"})
    response = connection.getresponse()
    assert response.status == 403
    assert b"may not read the event stream" in response.read()
    result = deployctl("events", "--endpoint-url", server.url, check=False,
                       env=server.env(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"]))
    assert result.returncode == 254 and "AccessDeniedException" in result.stderr
