"""The cadence of AWS's agent 1.8.1 (ARCHITECTURE.md, "AWS's agent 1.8.1 on the wire"): it polls again one second after every poll,
while the command it was handed still runs. The server holds that poll; it must answer it with the next command as
soon as the running one completes, not at the end of the hold (which cost a 20 s stall per hook over one second)."""
import json
import socket
import ssl
import threading
import time

import pytest

from test_attacks import COMMAND_TARGET, Fleet, call, sign

DONE = {"Format": "JSON", "Payload": '{"error_code":0,"script_name":"","message":"Succeeded: ","log":""}'}


@pytest.fixture(scope="module")
def fleet():
    f = Fleet(extra_args=("--poll-hold", "20"))
    yield f
    f.stop()


def held_poll(fleet, name):
    """Starts a PollHostCommand on its own thread; returns the thread and where its answer and its time will be."""
    host = fleet.hosts[name]
    result = {}

    def run():
        result["status"], result["answer"] = call(fleet.server, host, "PollHostCommand", {"HostIdentifier": host["arn"]})
        result["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_a_poll_held_while_the_command_runs_gets_the_next_command_when_it_completes(fleet):
    deployment = fleet.deploy()
    host = fleet.hosts["web-1"]
    names = []
    command = fleet.poll("web-1")
    for _ in range(3):
        names.append(command["CommandName"])
        status, answer = call(fleet.server, host, "PutHostCommandAcknowledgement",
                              {"HostCommandIdentifier": command["HostCommandIdentifier"], "Diagnostics": {"Format": "JSON", "Payload": "{}"}})
        assert status == 200, answer
        thread, result = held_poll(fleet, "web-1")
        time.sleep(1.0)  # the agent's wait_between_runs; the command is still running
        assert thread.is_alive(), f"the poll during {command['CommandName']} answered before it completed: {result}"
        completed = time.monotonic()
        status, answer = call(fleet.server, host, "PutHostCommandComplete",
                              {"HostCommandIdentifier": command["HostCommandIdentifier"], "CommandStatus": "Succeeded", "Diagnostics": DONE})
        assert status == 200, answer
        thread.join(30)
        assert result["status"] == 200, result
        following = result["answer"].get("HostCommand")
        assert following, f"the held poll answered nothing after {command['CommandName']} completed"
        assert following["CommandName"] != command["CommandName"]
        assert result["at"] - completed < 1.0, f"the next command came {result['at'] - completed:.1f} s after the completion"
        command = following
    events = fleet.events(deployment, "web-1")
    assert all(events[name] == "Succeeded" for name in names), events


def test_a_newer_poll_of_the_same_instance_supersedes_the_held_one():
    """An agent killed and restarted leaves its held poll on a connection the server may not have seen close. When
    the restarted agent polls, the older poll answers nothing at once and can never take a command (handed to a
    connection nobody reads, it would wait out the acknowledgement window: seen in test_across_hosts under load)."""
    fleet = Fleet(extra_args=("--agent-grace", "3", "--poll-hold", "5"))
    try:
        host = fleet.hosts["web-1"]
        body = json.dumps({"HostIdentifier": host["arn"]})
        headers = sign(fleet.server, host, COMMAND_TARGET + "PollHostCommand", body, service="codedeploy-commands")
        port = int(fleet.server.url.rsplit(":", 1)[1])
        headers.setdefault("Host", f"127.0.0.1:{port}")
        context = ssl.create_default_context(cafile=fleet.server.ca)
        # The agent before its restart: a poll held (nothing to deploy yet), its connection left open.
        gone = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
        request = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        gone.sendall((request + f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        time.sleep(0.5)
        thread, result = held_poll(fleet, "web-1")
        started = time.monotonic()
        gone.settimeout(5)
        answer = b""
        while not answer.endswith(b"}"):
            answer += gone.recv(65536)
        superseded_after = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 200") and b"HostCommand" not in answer, answer
        assert superseded_after < 1.0, f"the older poll was answered {superseded_after:.1f} s after the newer came"
        deployment = fleet.deploy()
        thread.join(10)
        command = result["answer"].get("HostCommand")
        assert command, result
        status, answer = call(fleet.server, host, "PutHostCommandAcknowledgement",
                              {"HostCommandIdentifier": command["HostCommandIdentifier"], "Diagnostics": {"Format": "JSON", "Payload": "{}"}})
        assert status == 200 and answer.get("CommandStatus") == "InProgress", answer
        status, answer = call(fleet.server, host, "PutHostCommandComplete",
                              {"HostCommandIdentifier": command["HostCommandIdentifier"], "CommandStatus": "Succeeded", "Diagnostics": DONE})
        assert status == 200, answer
        assert fleet.events(deployment, "web-1")[command["CommandName"]] == "Succeeded"
        gone.close()
    finally:
        fleet.stop()
