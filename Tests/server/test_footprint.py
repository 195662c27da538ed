"""What a command loads: libarchive (and the libxml2, ICU, nettle, zstd, lz4, lzma, bz2 and acl it brings) is opened
only by the commands that read or write bundles, so every other command starts without them (issue 12)."""
import os
import shutil
import subprocess

import pytest

from conftest import BINARY, ROOT, deployctl


def loaded_libraries(*args, cwd=None):
    """The shared objects the dynamic loader looked up while `deployctl args` ran (LD_DEBUG=libs)."""
    env = dict(os.environ, LD_DEBUG="libs")
    result = subprocess.run([BINARY, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
    return result, {line.split("find library=")[1].split(";")[0].split(" [")[0] for line in result.stderr.splitlines() if "find library=" in line}


def test_the_binary_does_not_link_libarchive():
    needed = subprocess.run(["readelf", "-d", BINARY], capture_output=True, text=True, check=True).stdout
    assert "libarchive" not in needed
    assert "libsqlite3" in needed  # the check can see a linked library


def test_a_release_build_carries_its_cpp_runtime():
    """`make release` links libstdc++ in (Package.swift, Makefile): the loader maps no libstdc++.so and binds none of
    its symbols at start. Checked on a release binary (DEPLOYCTL_BIN=.build/release/deployctl), whose debug-build twin
    links libstdc++ dynamically."""
    if "/release/" not in os.path.realpath(BINARY) or not os.path.exists(os.path.join(ROOT, ".build", "static-libstdc++", "libstdc++.a")):
        pytest.skip("needs a binary from `make release` (DEPLOYCTL_BIN=.build/release/deployctl)")
    needed = subprocess.run(["readelf", "-d", BINARY], capture_output=True, text=True, check=True).stdout
    assert "libc.so.6" in needed  # the check can see a linked library
    assert "libstdc++" not in needed
    result, libraries = loaded_libraries("--version")
    assert result.returncode == 0
    assert not any("libstdc++" in name for name in libraries), libraries


def test_version_and_api_commands_start_without_libarchive(tmp_path):
    result, libraries = loaded_libraries("--version")
    assert result.returncode == 0 and result.stdout.strip() == "0.1.0"
    assert not any("libarchive" in name for name in libraries), libraries
    state = str(tmp_path / "state.db")
    result, libraries = loaded_libraries("create-application", "--application-name", "web", "--state", state)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not any("libarchive" in name for name in libraries), libraries


def test_bundle_commands_load_libarchive_when_they_need_it(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    bundle = str(tmp_path / "b.tgz")
    created = deployctl("bundle", "create", "--source", str(source), "--bundle", bundle, "--bundle-type", "tgz")
    assert created.returncode == 0
    result, libraries = loaded_libraries("bundle", "list", "--bundle", bundle)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "appspec.yml" in result.stdout
    assert "libarchive.so.13" in libraries, libraries


def test_a_missing_libarchive_is_named_and_the_rest_still_works(tmp_path):
    """In a mount namespace of its own where libarchive.so.13 is an empty file: the bundle command fails with one
    line naming the library and the package, and a command that needs no bundle still works."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    library = os.path.realpath("/usr/lib/x86_64-linux-gnu/libarchive.so.13")
    if not os.path.exists(library):
        pytest.skip("libarchive.so.13 is not where Debian puts it")
    (tmp_path / "b.tar").write_bytes(b"\0" * 1024)
    script = (f"mount --bind /dev/null {library} && "
              f"{BINARY} bundle list --bundle {tmp_path / 'b.tar'}; echo status=$?; "
              f"{BINARY} create-application --application-name web --state {tmp_path / 'state.db'} --output text; echo status=$?")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60)
    lines = result.stdout.splitlines()
    assert lines[0] == "status=255", (result.stdout, result.stderr)
    assert "cannot load libarchive" in result.stderr and "apt-get install libarchive13" in result.stderr, result.stderr
    # create-application --output text prints the new application's id, then the shell its status.
    assert len(lines) == 3 and len(lines[1].strip()) == 36 and lines[2] == "status=0", result.stdout
