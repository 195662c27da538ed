#!/usr/bin/env python3
"""Writes Scripts/startup-order.txt: the functions the release binary runs while starting common commands, then the
data they touch, which the release link places side by side (lld --symbol-ordering-file, Package.swift), so
that starting faults in a few contiguous megabytes instead of 64 KiB windows scattered over 100 MB (issue 12: a
trivial `deployctl local` went from 24.5 to 18.5 MiB resident with the functions alone).

Functions: each command below runs under valgrind's callgrind (which records every function executed); the names the
binary defines are kept in the order callgrind first reports them. Data: each command runs again under valgrind's
lackey, which reports every address read or written; the .rodata symbols holding them (protocol conformance records,
type descriptors, ...) and the .bss ones (globals) follow the functions, in the order first touched. .data.rel.ro and
.data are left alone (the loader writes every page of them while relocating), and so are tables over 16 KiB (a
window each wherever they are).
A stale list costs only locality: names that no longer exist are ignored by the linker. Usage: `make startup-order`
(needs valgrind and a release build; about five minutes).
"""
import bisect
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
        roots = ["--agent-root", os.path.join(scratch, "agent"), "--install-root", os.path.join(scratch, "host")]
        commands = [
            ["--version"],
            ["local", "--bundle-location", revision, *roots],
            # Again: a redeploy (ApplicationStop of the last revision, cleanup, pruning).
            ["local", "--bundle-location", revision, *roots],
            ["local", "--bundle-location", bundle, "--type", "tgz", *roots],
            ["create-application", "--application-name", "web", "--state", state],
            ["list-applications", "--state", state],
            ["get-application", "--application-name", "web", "--state", state, "--query", "application.applicationName"],
            ["validate", "--bundle", bundle],
            ["validate", "--source", revision],
        ]
        shim = os.path.join(scratch, "valgrind-openat2.so")
        subprocess.run(["clang", "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(ROOT, "Scripts", "valgrind-openat2.c"), "-ldl"],
                       check=True)
        environment = dict(os.environ, LD_PRELOAD=shim)
        names, seen = [], set()
        for index, command in enumerate(commands):
            out = os.path.join(scratch, f"callgrind.{index}")
            run = subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}", binary, *command],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
            if run.returncode != 0:
                raise SystemExit(f"`deployctl {' '.join(command)}` failed under callgrind, so its profile is partial:\n{run.stdout[-2000:]}")
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
        data = data_order(binary, commands, environment)
    with open(OUTPUT, "w") as f:
        f.write("\n".join(ordered + data) + "\n")
    print(f"wrote {len(ordered)} functions and {len(data)} data symbols to {OUTPUT}", file=sys.stderr)


# Where valgrind (3.19, amd64) loads a position-independent executable.
VALGRIND_PIE_BASE = 0x108000
LARGEST_ORDERED_SYMBOL = 16 << 10


def data_order(binary, commands, environment):
    """The .rodata and .bss symbols the commands touch, in the order first touched (lackey's memory trace)."""
    sections = {}
    for line in subprocess.run(["readelf", "-W", "-S", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        match = re.match(r"^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if match:
            sections[match.group(1)] = (int(match.group(2), 16), int(match.group(3), 16))
    ordered = [sections[".rodata"], sections[".bss"]]
    symbols = []
    for line in subprocess.run(["nm", "-S", "-n", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            address, length = int(parts[0], 16), int(parts[1], 16)
            if any(start <= address < start + size for start, size in ordered) and 0 < length <= LARGEST_ORDERED_SYMBOL:
                symbols.append((address, length, parts[3]))
    addresses = [address for address, _, _ in symbols]
    low, high = min(start for start, _ in ordered), max(start + size for start, size in ordered)
    names, seen = [], set()
    for command in commands:
        for line in lackey_lines(binary, command, low, high - low, environment):
            at = bisect.bisect_right(addresses, line + 63) - 1
            while at >= 0 and symbols[at][0] + symbols[at][1] > line:
                name = symbols[at][2]
                if symbols[at][0] < line + 64 and name not in seen:
                    seen.add(name)
                    names.append(name)
                at -= 1
    return names


def lackey_lines(binary, command, start, size, environment):
    """The 64-byte lines of [start, start + size) that `binary command` reads or writes, in first-touch order."""
    low, high = VALGRIND_PIE_BASE + start, VALGRIND_PIE_BASE + start + size
    read_end, write_end = os.pipe()
    process = subprocess.Popen(["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-fd={write_end}", binary, *command],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_end,), env=environment)
    os.close(write_end)
    seen, lines = set(), []
    with os.fdopen(read_end, errors="replace") as trace:
        for record in trace:
            if record[:2] not in (" L", " S", " M"):
                continue
            address = int(record[3:record.index(",")], 16)
            if low <= address < high:
                line = (address - VALGRIND_PIE_BASE) & ~63
                if line not in seen:
                    seen.add(line)
                    lines.append(line)
    process.wait()
    if not lines:
        raise SystemExit(f"lackey saw no reads of .rodata or .bss for {command}: has valgrind's load address moved from {VALGRIND_PIE_BASE:#x}?")
    return lines


if __name__ == "__main__":
    main()
