"""The --wait live view in a pseudo-terminal of 80 columns, through a failing deployment that rolls back: no line is
wider than the terminal, and the failure's instance, event, code, output and where to read all of it are on screen,
then the rollback is followed to its end."""
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

from conftest import BINARY, deployctl

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def make_app(directory, validate_body, content):
    os.makedirs(os.path.join(directory, "scripts"), exist_ok=True)
    os.makedirs(os.path.join(directory, "site"), exist_ok=True)
    open(os.path.join(directory, "site", "index.html"), "w").write(content + "\n")
    script = os.path.join(directory, "scripts", "validate.sh")
    open(script, "w").write("#!/bin/bash\n" + validate_body + "\n")
    os.chmod(script, 0o755)
    open(os.path.join(directory, "appspec.yml"), "w").write(
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/app\nhooks:\n"
        "  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 30\n")


def local_group(tmp_path, host="h1"):
    """A throw-away state with application web, instance `host` and group prod; the environment to use it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEPLOYCTL_"))}
    env["DEPLOYCTL_STATE"] = str(tmp_path / "state.db")
    deployctl("create-application", "--application-name", "web", env=env)
    deployctl("register-on-premises-instance", "--instance-name", host, "--iam-user-arn", f"arn:aws:iam::000000000000:user/{host}", env=env)
    deployctl("add-tags-to-on-premises-instances", "--instance-names", host, "--tags", "Key=env,Value=prod", env=env)
    deployctl("create-deployment-group", "--application-name", "web", "--deployment-group-name", "prod",
              "--on-premises-instance-tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE", env=env)
    return env


def run_in_terminal(args, env, columns=80, rows=24, timeout=120):
    """Runs the command with its stdout and stderr on a pseudo-terminal of the given size; returns (code, output)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen(args, stdin=terminal, stdout=terminal, stderr=terminal, env=env, close_fds=True)
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                data = os.read(controller, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    os.close(controller)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_the_live_view_fits_80_columns_and_explains_a_failure_and_its_rollback(tmp_path):
    state = str(tmp_path / "state.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEPLOYCTL_"))}
    env.update({"DEPLOYCTL_STATE": state, "TERM": "xterm"})

    def cli(*args):
        return deployctl(*args, env=env)

    cli("create-application", "--application-name", "web")
    # A long instance name, so the view has to cut lines to stay inside 80 columns.
    host = "web-server-with-a-rather-long-name-in-rack-seven-of-the-east-datacentre"
    cli("register-on-premises-instance", "--instance-name", host, "--iam-user-arn", "arn:aws:iam::000000000000:user/h")
    cli("add-tags-to-on-premises-instances", "--instance-names", host, "--tags", "Key=env,Value=prod")
    cli("create-deployment-group", "--application-name", "web", "--deployment-group-name", "prod",
        "--on-premises-instance-tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE",
        "--auto-rollback-configuration", "enabled=true,events=DEPLOYMENT_FAILURE")
    good, bad = tmp_path / "good", tmp_path / "bad"
    make_app(str(good), "true", "v1")
    make_app(str(bad), 'echo "checking the service"; echo "port 8080 refused the connection: the service is down" >&2; exit 3', "v2")
    cli("push", "--application-name", "web", "--s3-location", "s3://releases/good.zip", "--source", str(good))
    cli("push", "--application-name", "web", "--s3-location", "s3://releases/bad.zip", "--source", str(bad))
    log = open(tmp_path / "agent.log", "w")
    agent = subprocess.Popen([BINARY, "agent", "run", "--instance-name", host, "--agent-root", str(tmp_path / "agent"),
                              "--install-root", str(tmp_path / "host"), "--poll-interval", "0.2"], stderr=log, env=env)
    try:
        first = json.loads(cli("create-deployment", "--application-name", "web", "--deployment-group-name", "prod",
                               "--s3-location", "bucket=releases,key=good.zip,bundleType=zip", "--wait", "--timeout", "60").stdout)
        assert first["deploymentId"].startswith("d-")
        code, screen = run_in_terminal(
            [BINARY, "create-deployment", "--application-name", "web", "--deployment-group-name", "prod",
             "--s3-location", "bucket=releases,key=bad.zip,bundleType=zip", "--wait", "--timeout", "60"], env)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
        log.close()
    assert code == 255, screen
    visible = ANSI.sub("", screen).replace("\r\n", "\n")
    for line in re.split(r"[\n\r]", visible):
        assert len(line) <= 80, f"a line of {len(line)} columns wraps in an 80-column terminal: {line!r}"
    assert "ValidateService failed: ScriptFailed in scripts/validate.sh" in visible, visible
    assert "port 8080 refused the connection: the service is down" in visible
    assert "all of it: deployctl logs --deployment-id d-" in visible
    rollback = re.search(r"rolling back as (d-[A-Z0-9]+)", visible)
    assert rollback, visible
    assert f"rollback {rollback.group(1)} Succeeded" in visible
    # The rollback put v1 back.
    assert open(tmp_path / "host" / "srv" / "app" / "index.html").read() == "v1\n"
    # `deployctl logs`, as the view suggests: every event's diagnostics, then the whole scripts.log from this host.
    failed = re.search(r'"deploymentId": "(d-[A-Z0-9]+)"', visible).group(1)
    logs = cli("logs", "--deployment-id", failed, "--agent-root", str(tmp_path / "agent")).stdout
    assert f"{failed} Failed (web / prod)" in logs
    assert f"{host}  ValidateService  Failed" in logs
    assert "ScriptFailed in scripts/validate.sh: Script at specified location: scripts/validate.sh failed with exit code 3" in logs
    assert "  | [stderr]port 8080 refused the connection: the service is down" in logs
    assert "/logs/scripts.log" in logs and "LifecycleEvent - ValidateService" in logs
    assert logs.index("Install  Succeeded") < logs.index("ValidateService  Failed")
    only = cli("logs", "--deployment-id", failed, "--event", "ValidateService", "--agent-root", str(tmp_path / "agent"), "--follow").stdout
    assert "Install  Succeeded" not in only and "ValidateService  Failed" in only and "[stdout]checking the service" in only
    unknown = deployctl("logs", "--deployment-id", failed, "--instance-id", "nope", env=env, check=False)
    assert unknown.returncode == 254 and "DeploymentTargetDoesNotExistException" in unknown.stderr and host in unknown.stderr


def test_a_stopped_deployment_is_followed_until_its_running_event_ends(tmp_path):
    env = local_group(tmp_path)

    def cli(*args, check=True):
        return deployctl(*args, env=env, check=check)

    slow = tmp_path / "slow"
    make_app(str(slow), "sleep 3", "v1")
    cli("push", "--application-name", "web", "--s3-location", "s3://releases/slow.zip", "--source", str(slow))
    log = open(tmp_path / "agent.log", "w")
    agent = subprocess.Popen([BINARY, "agent", "run", "--instance-name", "h1", "--agent-root", str(tmp_path / "agent"),
                              "--install-root", str(tmp_path / "host"), "--poll-interval", "0.2"], stderr=log, env=env)
    try:
        deployment = cli("create-deployment", "--application-name", "web", "--deployment-group-name", "prod",
                         "--s3-location", "bucket=releases,key=slow.zip,bundleType=zip", "--query", "deploymentId",
                         "--output", "text").stdout.strip()
        waiter = subprocess.Popen([BINARY, "wait", "deployment-successful", "--deployment-id", deployment, "--timeout", "60"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            target = json.loads(cli("get-deployment-target", "--deployment-id", deployment, "--target-id", "h1").stdout)
            events = {e["lifecycleEventName"]: e["status"] for e in target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]}
            if events.get("ValidateService") == "InProgress":
                break
            time.sleep(0.1)
        cli("stop-deployment", "--deployment-id", deployment)
        _, err = waiter.communicate(timeout=60)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
        log.close()
    assert waiter.returncode == 255
    assert "Stopping: 1 event still running" in err, err
    # It went on until the event ended: after the Stopping line, the instance's ValidateService is seen to finish.
    after = err[err.index("Stopping: 1 event still running"):]
    assert "ValidateService Succeeded" in after, err


def test_the_agent_says_what_it_does_in_text_or_json_lines(tmp_path):
    env = local_group(tmp_path)

    def cli(*args):
        return deployctl(*args, env=env)

    bad = tmp_path / "bad"
    make_app(str(bad), 'echo "down" >&2; exit 4', "v1")
    cli("push", "--application-name", "web", "--s3-location", "s3://releases/bad.zip", "--source", str(bad))
    agent = subprocess.Popen([BINARY, "agent", "run", "--instance-name", "h1", "--agent-root", str(tmp_path / "agent"),
                              "--install-root", str(tmp_path / "host"), "--poll-interval", "0.2", "--log-format", "json"],
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        deployment = cli("create-deployment", "--application-name", "web", "--deployment-group-name", "prod",
                         "--s3-location", "bucket=releases,key=bad.zip,bundleType=zip", "--query", "deploymentId", "--output", "text").stdout.strip()
        deployctl("wait", "deployment-successful", "--deployment-id", deployment, "--timeout", "60", env=env, check=False)
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=60)
    lines = [json.loads(line) for line in err.splitlines()]
    assert lines[0]["message"] == "started" and lines[0]["instance"] == "h1"
    assert lines[0]["control_plane"].startswith("state file ") and lines[0]["agent_root"] == str(tmp_path / "agent")
    events = [line for line in lines if line.get("deployment_id") == deployment]
    assert [e["event"] for e in events][:2] == ["ApplicationStop", "DownloadBundle"]
    assert all(e["level"] in ("info", "error") for e in events)
    assert all("duration_s" in e for e in events if e["status"] != "Skipped")
    assert lines[0]["time"].endswith("Z")
    failed = [e for e in events if e["status"] == "Failed"]
    assert len(failed) == 1 and failed[0]["event"] == "ValidateService" and failed[0]["level"] == "error"
    assert failed[0]["error_code"] == "ScriptFailed" and "exit code 4" in failed[0]["message"]
    assert any(line["level"] == "notice" and line["message"].startswith("stopping") for line in lines)
    assert lines[-1]["message"] == "stopped"
    # Text by default: the same lines for people.
    text = subprocess.run([BINARY, "agent", "run", "--instance-name", "h1", "--agent-root", str(tmp_path / "agent"), "--once"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert text.returncode == 0 and "started" in text.stderr and "instance=h1" in text.stderr
    bad_level = subprocess.run([BINARY, "agent", "run", "--instance-name", "h1", "--once", "--log-level", "loud"],
                               capture_output=True, text=True, env=env, timeout=60)
    assert bad_level.returncode == 252 and "--log-level" in bad_level.stderr


def test_local_shows_the_running_event_and_its_elapsed_time(tmp_path):
    app = tmp_path / "slow"
    make_app(str(app), "sleep 3", "v1")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEPLOYCTL_"))}
    env["TERM"] = "xterm"
    args = [BINARY, "local", "--bundle-location", str(app), "--type", "directory", "--install-root", str(tmp_path / "root"),
            "--agent-root", str(tmp_path / "agent")]
    code, screen = run_in_terminal(args, env)
    assert code == 0, screen
    assert "ValidateService     running 1s" in ANSI.sub("", screen), screen
    final = [line for line in re.split(r"[\r\n]", ANSI.sub("", screen)) if line.startswith("  ValidateService")][-1]
    assert "Succeeded" in final
    # Not on a terminal: one line while it runs, then its result.
    piped = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert re.search(r"  ValidateService     still running after [23]s\n  ValidateService     Succeeded", piped.stdout), piped.stdout


def test_big_bundles_show_progress_on_a_terminal_only(tmp_path):
    source = tmp_path / "big"
    (source / "data").mkdir(parents=True)
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\nfiles:\n  - source: data\n    destination: /srv/data\n")
    with open(source / "data" / "blob.bin", "wb") as f:
        for _ in range(160):
            f.write(os.urandom(1 << 20))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DEPLOYCTL_"))}
    env.update({"TERM": "xterm", "DEPLOYCTL_STATE": str(tmp_path / "state.db")})
    bundle = tmp_path / "big.tgz"
    code, screen = run_in_terminal([BINARY, "bundle", "create", "--source", str(source), "--bundle", str(bundle), "--bundle-type", "tgz"], env)
    visible = ANSI.sub("", screen)
    assert code == 0, screen
    assert re.search(r"bundling \d+\.\d MiB written  \d+\.\d MiB/s", visible), visible
    assert visible.rstrip().endswith(f"wrote {bundle}: 3 entries, {160 << 20} bytes") or "wrote" in visible.splitlines()[-1], visible
    # Extraction is too quick here (160 MB in about 0.2 s) for a line to appear; the read position it is measured by
    # is checked in DeployCLITests.
    code, screen = run_in_terminal([BINARY, "bundle", "extract", "--bundle", str(bundle), "--into", str(tmp_path / "out")], env)
    assert code == 0 and "extracted 3 entries" in screen, screen
    # Piped, no progress line: the output is what scripts read.
    piped = subprocess.run([BINARY, "bundle", "extract", "--bundle", str(bundle), "--into", str(tmp_path / "again")], capture_output=True,
                           text=True, env=env, timeout=120)
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout.startswith("extracted ")
    # push shows its bundling and upload phases.
    deployctl("create-application", "--application-name", "big", env=env)
    code, screen = run_in_terminal([BINARY, "push", "--application-name", "big", "--s3-location", "s3://releases/big.tgz", "--source",
                                    str(source), "--bundle-type", "tgz"], env)
    visible = ANSI.sub("", screen)
    assert code == 0, screen
    assert "bundling" in visible and "To deploy with this revision, run:" in visible
