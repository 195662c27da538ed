#!/usr/bin/env python3
"""Bundle extraction: `deployctl bundle extract` against `bsdtar -xf` on the same archives, in the same run.

Generates a bundle of FILES files holding MEGABYTES MB in total (half random bytes, half text, so compression
has something to do), writes it as zip and tgz with `deployctl bundle create`, then extracts each archive RUNS
times with both tools into fresh directories and prints median wall time, the ratio deployctl / bsdtar, and peak
resident memory (ru_maxrss of each child). A second, ten times smaller bundle shows whether memory grows with size.

Usage: `make bench-extract` or `python3 bench/extract.py [--binary PATH] [--files N] [--megabytes N] [--runs N]`.
Needs bsdtar (Debian: libarchive-tools).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_tree(root, files, total_bytes):
    size = total_bytes // files
    text = (b"deployctl benchmark line of text that compresses reasonably well\n" * (size // 64 + 1))[: size // 2]
    with open(os.path.join(root, "appspec.yml"), "w") as f:
        f.write("version: 0.0\nos: linux\n")
    for i in range(files):
        directory = os.path.join(root, f"d{i // 500:03d}")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"f{i:05d}.dat"), "wb") as f:
            f.write(os.urandom(size - len(text)) + text)


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(command, quick=False):
    """Wall time in seconds and peak RSS in MiB of one child process.

    The RSS comes from GNU time (`time` package) when it is installed: the ru_maxrss that wait4 reports for a child
    of this Python process starts at Python's own RSS (about 14 MiB; the kernel counts the parent's pages a vforked
    child had before exec), which hid everything below it. Both sides of every comparison run the same way.
    `quick`: a command of a few milliseconds, timed on its own and run again under GNU time for its RSS, so that
    time's own start (about 1 ms) is not in the figure."""
    if quick and TIME:
        return timed(command)[0], run(command)[1]
    with tempfile.NamedTemporaryFile("r") as report:
        elapsed, usage = timed([TIME, "-f", "%M", "-o", report.name] + command if TIME else command, shown=command)
        peak = int(report.read().split()[-1]) if TIME else usage.ru_maxrss
    return elapsed, peak / 1024


def timed(command, shown=None):
    """Wall time of one child process and its rusage; exits naming the command when it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{' '.join(shown or command)} failed: {proc.stderr.read().decode()}")
    return elapsed, usage


def measure(binary, archive, runs, scratch):
    results = {"deployctl": [], "bsdtar": []}
    memory = {"deployctl": 0.0, "bsdtar": 0.0}
    for i in range(runs):
        for tool in ("bsdtar", "deployctl"):
            target = os.path.join(scratch, f"{tool}-{i}")
            if tool == "bsdtar":
                os.makedirs(target)
                command = ["bsdtar", "-xf", archive, "-C", target]
            else:
                command = [binary, "bundle", "extract", "--bundle", archive, "--into", target]
            subprocess.run(["sync"])
            seconds, rss = run(command)
            results[tool].append(seconds)
            memory[tool] = max(memory[tool], rss)
            shutil.rmtree(target)
    return {tool: statistics.median(times) for tool, times in results.items()}, memory


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("bsdtar"):
        raise SystemExit("bsdtar is missing: apt-get install libarchive-tools")

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as scratch:
        print(f"release build, {os.cpu_count()} cores, median of {args.runs} runs, into fresh directories on {scratch}")
        print(f"{'bundle':<34} {'deployctl s':>11} {'bsdtar s':>9} {'ratio':>6} {'deployctl MiB':>14} {'bsdtar MiB':>11}")
        for files, megabytes in ((args.files // 10, args.megabytes // 10), (args.files, args.megabytes)):
            tree = os.path.join(scratch, f"tree-{files}")
            os.makedirs(tree)
            make_tree(tree, files, megabytes << 20)
            for kind in ("zip", "tgz"):
                archive = os.path.join(scratch, f"bundle-{files}.{kind}")
                subprocess.run([args.binary, "bundle", "create", "--source", tree, "--bundle", archive, "--bundle-type", kind],
                               check=True, stdout=subprocess.DEVNULL)
                medians, memory = measure(args.binary, archive, args.runs, scratch)
                label = f"{files} files / {megabytes} MB {kind} ({os.path.getsize(archive) >> 20} MB)"
                ratio = medians["deployctl"] / medians["bsdtar"]
                print(f"{label:<34} {medians['deployctl']:>11.3f} {medians['bsdtar']:>9.3f} {ratio:>6.2f} "
                      f"{memory['deployctl']:>14.1f} {memory['bsdtar']:>11.1f}")
                sys.stdout.flush()
            shutil.rmtree(tree)


if __name__ == "__main__":
    main()
