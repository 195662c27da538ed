#!/usr/bin/env python3
"""`deployctl local`: a trivial deployment, and installing / redeploying a 10,000-file bundle.

1. A revision with one no-op hook (AfterInstall: `true`), deployed RUNS times to the same group (so every run after
   the first is a real redeploy: ApplicationStop of the previous revision, cleanup, install). Baseline in the same
   run: spawning the hook itself (`/bin/sh noop.sh`).
2. A 10,000-file / 100 MB tgz bundle (the extraction benchmark's tree) installed into an empty install root, then
   redeployed over itself. Baseline in the same run: `bsdtar -xf` into a fresh directory plus `cp -a` of the result.
3. `deployctl --version`: start-up time and resident memory, beside `/bin/true`.
4. A 1 GB bundle of four 256 MB files: peak memory must stay flat (`--large-mb 0` skips it).

Prints medians, ratios and peak RSS (ru_maxrss of each child). Usage: `make bench-local` or
`python3 bench/local.py [--binary PATH] [--runs N] [--files N] [--megabytes N]`. Needs bsdtar (libarchive-tools).
"""
import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extract import make_tree  # noqa: E402
from extract import run as run_once  # noqa: E402


def run(command, settle=False, quick=False):
    """`extract.run`, after writing back what earlier runs left dirty when `settle` is set: the kernel's
    writeback threads would otherwise take the second core from whichever run comes next."""
    if settle:
        os.sync()
    return run_once(command, quick=quick)


@contextlib.contextmanager
def big_filesystem(scratch):
    """Where the 10,000-file runs write: a fresh ext4 (with its default journal) on a loop device when run as root
    with mkfs.ext4 and loop devices, else `scratch`. This VM's own root filesystem is an ext4 *without* a journal,
    where creating a file scans past every inode deleted in the last minutes (recently_deleted() in
    ext4_new_inode): the same tool measured 2-5x slower from one run to the next, depending on what the machine had
    just deleted. `BENCH_LOOP=0` writes to `scratch` anyway. Nothing is deleted between timed runs either way."""
    if os.environ.get("BENCH_LOOP") == "0" or os.geteuid() != 0 or not shutil.which("mkfs.ext4") or not shutil.which("losetup"):
        yield scratch, f"{scratch} (BENCH_LOOP=0, not root, or no mkfs.ext4)"
        return
    image, mount = os.path.join(scratch, "ext4.img"), os.path.join(scratch, "ext4")
    os.makedirs(mount)
    with open(image, "wb") as f:
        f.truncate(4 << 30)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
    if subprocess.run(["mount", "-o", "loop", image, mount]).returncode != 0:
        yield scratch, f"{scratch} (the loop mount failed)"
        return
    try:
        yield mount, "a fresh 4 GiB ext4 with a journal, on a loop device (see big_filesystem)"
    finally:
        subprocess.run(["umount", mount], check=True)


def evict(path):
    """Drops `path` from the page cache, so that it comes back as the runs fault it in. A binary's resident size
    depends on how its file sits in the page cache: this kernel (6.18) maps file pages by folio, so the same bytes
    measured 14.5 MiB as lld wrote them, 16.2 MiB copied with cp and 18.3 MiB after a sequential read (cat), but
    14.3-15.2 MiB when only running it had read them back, as after a reboot. That last state is the one measured."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "deployctl"))
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--big-runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--large-mb", type=int, default=1024)
    args = parser.parse_args()
    if not shutil.which("bsdtar"):
        raise SystemExit("bsdtar is missing: apt-get install libarchive-tools")

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as scratch:
        print(f"release build, {os.cpu_count()} cores")
        trivial = os.path.join(scratch, "trivial")
        os.makedirs(trivial)
        with open(os.path.join(trivial, "appspec.yml"), "w") as f:
            f.write("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: noop.sh\n")
        with open(os.path.join(trivial, "noop.sh"), "w") as f:
            f.write("#!/bin/sh\ntrue\n")
        os.chmod(os.path.join(trivial, "noop.sh"), 0o755)
        agent_root = os.path.join(scratch, "agent-root")
        deploy = [args.binary, "local", "--bundle-location", trivial, "--agent-root", agent_root, "--install-root",
                  os.path.join(scratch, "host")]
        samples, rss = [], 0.0
        evict(args.binary)
        for _ in range(args.runs):
            seconds, peak = run(deploy, quick=True)
            samples.append(seconds)
            rss = max(rss, peak)
        hook = [run(["/bin/sh", os.path.join(trivial, "noop.sh")], quick=True)[0] for _ in range(args.runs)]
        local_ms, hook_ms = statistics.median(samples) * 1000, statistics.median(hook) * 1000
        print(f"trivial bundle, {args.runs} deployments to one group (every one after the first a redeploy):")
        print(f"  deployctl local median {local_ms:.1f} ms, peak RSS {rss:.1f} MiB; the hook alone {hook_ms:.1f} ms "
              f"(overhead {local_ms - hook_ms:.1f} ms)")

        tree = os.path.join(scratch, "tree")
        os.makedirs(tree)
        make_tree(tree, args.files, args.megabytes << 20)
        with open(os.path.join(tree, "appspec.yml"), "w") as f:
            f.write("version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv/big\n")
        bundle = os.path.join(scratch, "big.tgz")
        subprocess.run([args.binary, "bundle", "create", "--source", tree, "--bundle", bundle, "--bundle-type", "tgz"],
                       check=True, stdout=subprocess.DEVNULL)
        installs, redeploys, baselines, peak = [], [], [], 0.0
        with big_filesystem(scratch) as (disk, label):
            print(f"10,000-file runs on {label}")
            for i in range(args.big_runs):
                root = os.path.join(disk, f"big-root-{i}")
                host = os.path.join(disk, f"big-host-{i}")
                command = [args.binary, "local", "--bundle-location", bundle, "--type", "tgz", "--agent-root", root,
                           "--install-root", host, "--events", "DownloadBundle,Install"]
                seconds, rss = run(command, settle=True)
                installs.append(seconds)
                peak = max(peak, rss)
                seconds, rss = run(command, settle=True)
                redeploys.append(seconds)
                peak = max(peak, rss)
                extract_dir = os.path.join(disk, f"bsdtar-{i}")
                copy_dir = os.path.join(disk, f"cp-{i}")
                os.makedirs(extract_dir)
                os.sync()
                start = time.perf_counter()
                subprocess.run(["bsdtar", "-xf", bundle, "-C", extract_dir], check=True)
                subprocess.run(["cp", "-a", extract_dir + "/.", copy_dir], check=True)
                baselines.append(time.perf_counter() - start)
        install, redeploy, baseline = (statistics.median(x) for x in (installs, redeploys, baselines))
        print(f"{args.files} files / {args.megabytes} MB tgz, median of {args.big_runs}:")
        print(f"  install  {install:.3f} s  ({install / baseline:.2f}x bsdtar -xf + cp -a {baseline:.3f} s)")
        print(f"  redeploy {redeploy:.3f} s  ({redeploy / baseline:.2f}x; unchanged files are left in place)")
        print(f"  peak RSS {peak:.1f} MiB")

        version, version_rss, true_times = [], 0.0, []
        evict(args.binary)
        for _ in range(args.runs):
            seconds, rss = run([args.binary, "--version"], quick=True)
            version.append(seconds)
            version_rss = max(version_rss, rss)
            true_times.append(run(["/bin/true"], quick=True)[0])
        print(f"deployctl --version: median {statistics.median(version) * 1000:.1f} ms, peak RSS {version_rss:.1f} MiB "
              f"(/bin/true {statistics.median(true_times) * 1000:.1f} ms)")

        if args.large_mb > 0:
            large = os.path.join(scratch, "large")
            os.makedirs(os.path.join(large, "data"))
            with open(os.path.join(large, "appspec.yml"), "w") as f:
                f.write("version: 0.0\nos: linux\nfiles:\n  - source: data\n    destination: /srv/large\n")
            chunk = os.urandom(1 << 20)
            for n in range(4):
                with open(os.path.join(large, "data", f"part-{n}.bin"), "wb") as f:
                    for _ in range(args.large_mb // 4):
                        f.write(chunk)
            large_bundle = os.path.join(scratch, "large.tar")
            subprocess.run([args.binary, "bundle", "create", "--source", large, "--bundle", large_bundle, "--bundle-type", "tar"],
                           check=True, stdout=subprocess.DEVNULL)
            shutil.rmtree(large)
            seconds, rss = run([args.binary, "local", "--bundle-location", large_bundle, "--type", "tar", "--agent-root",
                                os.path.join(scratch, "large-root"), "--install-root", os.path.join(scratch, "large-host"),
                                "--events", "DownloadBundle,Install"])
            print(f"{args.large_mb} MB bundle of 4 files: install {seconds:.2f} s, peak RSS {rss:.1f} MiB")


if __name__ == "__main__":
    main()
