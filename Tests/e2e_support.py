"""What the end-to-end suites outside Tests/server share: the server fixture's module, free ports, and the hook
scripts that run a small HTTP service under an agent's install root (its port in $DEPLOYCTL_INSTALL_ROOT/port, its
PID in service.pid). Loaded by path (importlib), as each suite's own conftest-free module."""
import importlib.util
import json
import os
import signal
import socket
import subprocess
import time

TESTS = os.path.dirname(os.path.abspath(__file__))


def server_conftest():
    """Tests/server/conftest.py as a module: BINARY, Server, deployctl."""
    spec = importlib.util.spec_from_file_location("server_conftest", os.path.join(TESTS, "server", "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Waits until the PID is gone or a zombie (the agent may be its reaper, so kill -0 alone would wait forever).
_WAIT_GONE = """while [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; do sleep 0.02; done"""

STOP = f"""#!/bin/sh
pidfile="$DEPLOYCTL_INSTALL_ROOT/service.pid"
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null
  {_WAIT_GONE}
  rm -f "$pidfile"
fi
exit 0
"""


def start_script(app, delay=0.0):
    """ApplicationStart: replaces a service another deployment group left running, waits `delay` seconds (a service
    that takes a moment to start, as real ones do), starts `$DEPLOYCTL_INSTALL_ROOT/<app>/server.py` detached and
    waits until its port answers."""
    return f"""#!/bin/sh
set -eu
port=$(cat "$DEPLOYCTL_INSTALL_ROOT/port")
if [ -f "$DEPLOYCTL_INSTALL_ROOT/service.pid" ]; then
  pid=$(cat "$DEPLOYCTL_INSTALL_ROOT/service.pid")
  kill "$pid" 2>/dev/null || true
  {_WAIT_GONE}
fi
sleep {delay}
setsid python3 "$DEPLOYCTL_INSTALL_ROOT/{app}/server.py" "$port" >/dev/null 2>&1 < /dev/null &
echo $! > "$DEPLOYCTL_INSTALL_ROOT/service.pid"
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && exit 0
  sleep 0.05
done
echo "the service did not open 127.0.0.1:$port" >&2
exit 1
"""


def stop_service(install_root):
    """Ends the service a test's deployments left running under `install_root`, by its PID."""
    pidfile = os.path.join(install_root, "service.pid")
    if os.path.exists(pidfile):
        try:
            os.kill(int(open(pidfile).read()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


_conftest = None


def _server_module():
    global _conftest
    if _conftest is None:
        _conftest = server_conftest()
    return _conftest


def start_agent(server, name, tags, host, port=None):
    """Registers `name` with `server` (its files written to `host`), points its codedeployagent.yml at `host`, and
    starts `deployctl agent run --config` with the install root `host`/fs (its service port in fs/port when given).
    Answers the process and its log file; the caller stops it by its PID and closes the log."""
    module = _server_module()
    os.makedirs(host + "/fs", exist_ok=True)
    if port is not None:
        open(host + "/fs/port", "w").write(str(port))
    module.deployctl("register", "--state", server.state, "--instance-name", name, "--tags", tags,
                     "--endpoint-url", server.url, "--output-dir", host)
    config = os.path.join(host, "codedeployagent.yml")
    text = open(config).read().replace("/etc/codedeploy-agent/conf/", host + "/")
    open(config, "w").write(text.replace("/opt/codedeploy-agent/deployment-root", host + "/root"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("DEPLOYCTL_")}
    log = open(os.path.join(host, "agent.log"), "w")
    process = subprocess.Popen([module.BINARY, "agent", "run", "--config", config, "--install-root", host + "/fs"], stderr=log, env=env)
    return process, log


def remote(server, *args, check=True):
    """deployctl with the admin key against `server`."""
    return _server_module().deployctl(*args, "--endpoint-url", server.url, env=server.env("admin"), check=check, timeout=300)


def deployment_info(server, deployment):
    return json.loads(remote(server, "get-deployment", "--deployment-id", deployment).stdout)["deploymentInfo"]


def until(server, deployment, statuses=("Succeeded", "Failed", "Stopped"), seconds=90):
    """The deployment's info once its status is one of `statuses` (fails after `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        detail = deployment_info(server, deployment)
        if detail["status"] in statuses:
            return detail
        time.sleep(0.3)
    raise AssertionError(f"{deployment} still {deployment_info(server, deployment)['status']} after {seconds} s")
