"""The cadence of AWS's agent 1.8.1 (codedeploy-command-protocol.md §5.2): it polls again one second after every poll,
while the command it was handed still runs. The server holds that poll; it must answer it with the next command as
soon as the running one completes, not at the end of the hold (which cost a 20 s stall per hook over one second)."""
import threading
import time

import pytest

from test_attacks import Fleet, call

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
