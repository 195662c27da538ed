#!/usr/bin/env python3
"""Writes Scripts/startup-order.txt: the functions the release binary runs while starting common commands, which the
release link places side by side (lld --symbol-ordering-file, Package.swift), so that starting faults in a few
contiguous megabytes of code instead of 64 KiB windows scattered over 100 MB (issue 12: a trivial `deployctl local`
went from 24.5 to 18.5 MiB resident).

It runs each command below under valgrind's callgrind (which records every function executed), keeps the names the
binary defines, and writes them in the order callgrind first reports them. A stale list costs only locality: names
that no longer exist are ignored by the linker. Usage: `make startup-order` (needs valgrind and a release build).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, ".build", "release", "deployctl")
OUTPUT = os.path.join(ROOT, "Scripts", "startup-order.txt")


def main():
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    with tempfile.TemporaryDirectory() as scratch:
        # valgrind 3.19 cannot read the release binary's debug information: profile a copy without it.
        binary = os.path.join(scratch, "deployctl")
        subprocess.run(["objcopy", "--strip-debug", BINARY, binary], check=True)
        revision = os.path.join(scratch, "revision")
        os.makedirs(os.path.join(revision, "scripts"))
        with open(os.path.join(revision, "appspec.yml"), "w") as f:
            f.write("version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\n"
                    "hooks:\n  AfterInstall:\n    - location: scripts/noop.sh\n")
        os.makedirs(os.path.join(revision, "site"))
        with open(os.path.join(revision, "site", "index.html"), "w") as f:
            f.write("<h1>hello</h1>\n")
        with open(os.path.join(revision, "scripts", "noop.sh"), "w") as f:
            f.write("#!/bin/sh\ntrue\n")
        os.chmod(os.path.join(revision, "scripts", "noop.sh"), 0o755)
        bundle = os.path.join(scratch, "revision.tgz")
        subprocess.run([BINARY, "bundle", "create", "--source", revision, "--bundle", bundle, "--bundle-type", "tgz"],
                       check=True, stdout=subprocess.DEVNULL)
        state = os.path.join(scratch, "state.db")
        commands = [
            ["--version"],
            ["local", "--bundle-location", revision, "--agent-root", os.path.join(scratch, "agent"),
             "--install-root", os.path.join(scratch, "host")],
            ["local", "--bundle-location", bundle, "--type", "tgz", "--agent-root", os.path.join(scratch, "agent"),
             "--install-root", os.path.join(scratch, "host")],
            ["create-application", "--application-name", "web", "--state", state],
            ["list-applications", "--state", state],
            ["get-application", "--application-name", "web", "--state", state, "--query", "application.applicationName"],
            ["validate", "--bundle", bundle],
        ]
        names, seen = [], set()
        for index, command in enumerate(commands):
            out = os.path.join(scratch, f"callgrind.{index}")
            subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}", binary, *command],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(out, errors="replace") as f:
                for line in f:
                    match = re.match(r"^c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
                    if match:
                        name = match.group(1).split("'")[0]
                        if name not in seen:
                            seen.add(name)
                            names.append(name)
        symbols = subprocess.run(["nm", "--defined-only", BINARY], capture_output=True, text=True, check=True).stdout
        defined = {parts[2] for parts in (line.split() for line in symbols.splitlines()) if len(parts) == 3 and parts[1] in "tTwW"}
        ordered = [name for name in names if name in defined]
    with open(OUTPUT, "w") as f:
        f.write("\n".join(ordered) + "\n")
    print(f"wrote {len(ordered)} functions to {OUTPUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
