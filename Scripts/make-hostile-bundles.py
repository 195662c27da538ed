#!/usr/bin/env python3
"""Writes crafted, hostile revision bundles into Fixtures/bundles/hostile/ (or the directory given).

Each archive tries one way of writing outside the extraction directory or of exhausting the disk. The
bundles are generated, not committed: the Bundles tests run this script before they use them.

  zip-slip.zip            entries named ../evil.txt and a/../../evil2.txt
  absolute-path.tar       an entry named /tmp/deployctl-hostile-absolute.txt
  symlink-escape.tar      a symlink to /etc and one to ../../..
  symlink-then-write.tar  a symlink to ../../outside, then a file written through it
  symlink-then-write.zip  the same with zip's symlink entries
  hardlink-escape.tar     hard links to /etc/passwd and ../../etc/passwd
  device-file.tar         a character device (1,3) entry
  fifo.tar                a named pipe entry
  zip-bomb.zip            one entry of 64 MiB of zeros (about 64 KiB compressed)
  many-entries.tgz        5,000 empty files
  deep-path.tar           one file 3,000 directories deep (a 6,000-character name)
  symlink-over-dir.tar    files in etc/, then a symlink etc -> /tmp/deployctl-hostile-outside, then etc/pwned.txt
  tar-semantics.tar       not hostile: a read-only directory with a file in it, a path written twice, a file replaced
                          by a symlink, a setuid file and a hard link, with their modification times
"""
import io
import os
import stat
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tar_with(path, members, mode="w"):
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def file_info(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def link_info(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.mode = 0o777
    return info, None


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "Fixtures", "bundles", "hostile")
    os.makedirs(out, exist_ok=True)
    appspec = b"version: 0.0\nos: linux\n"

    with zipfile.ZipFile(os.path.join(out, "zip-slip.zip"), "w") as z:
        z.writestr("appspec.yml", appspec)
        z.writestr("../evil.txt", b"escaped")
        z.writestr("a/../../evil2.txt", b"escaped")

    tar_with(os.path.join(out, "absolute-path.tar"), [
        file_info("appspec.yml", appspec),
        file_info("/tmp/deployctl-hostile-absolute.txt", b"escaped"),
    ])

    tar_with(os.path.join(out, "symlink-escape.tar"), [
        file_info("appspec.yml", appspec),
        link_info("etc", "/etc"),
        link_info("up", "../../.."),
    ])

    tar_with(os.path.join(out, "symlink-then-write.tar"), [
        file_info("appspec.yml", appspec),
        link_info("escape", "../../outside"),
        file_info("escape/pwned.txt", b"escaped"),
    ])

    with zipfile.ZipFile(os.path.join(out, "symlink-then-write.zip"), "w") as z:
        z.writestr("appspec.yml", appspec)
        link = zipfile.ZipInfo("escape")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "../../outside")
        z.writestr("escape/pwned.txt", b"escaped")

    tar_with(os.path.join(out, "hardlink-escape.tar"), [
        file_info("appspec.yml", appspec),
        link_info("passwd", "/etc/passwd", tarfile.LNKTYPE),
        link_info("passwd2", "../../etc/passwd", tarfile.LNKTYPE),
    ])

    device = tarfile.TarInfo("dev/null-copy")
    device.type = tarfile.CHRTYPE
    device.devmajor, device.devminor = 1, 3
    device.mode = 0o666
    tar_with(os.path.join(out, "device-file.tar"), [file_info("appspec.yml", appspec), (device, None)])

    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    fifo.mode = 0o644
    tar_with(os.path.join(out, "fifo.tar"), [file_info("appspec.yml", appspec), (fifo, None)])

    with zipfile.ZipFile(os.path.join(out, "zip-bomb.zip"), "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("appspec.yml", appspec)
        with z.open("zeros.bin", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(64):
                f.write(chunk)

    tar_with(os.path.join(out, "many-entries.tgz"),
             [file_info("appspec.yml", appspec)] + [file_info(f"f/{i:05d}", b"") for i in range(5000)], mode="w:gz")
    tar_with(os.path.join(out, "deep-path.tar"), [file_info("appspec.yml", appspec), file_info("a/" * 3000 + "deep.txt", b"deep")])

    tar_with(os.path.join(out, "symlink-over-dir.tar"), [
        file_info("appspec.yml", appspec),
        *[file_info(f"etc/file-{i}", b"inside") for i in range(20)],
        link_info("etc", "/tmp/deployctl-hostile-outside"),
        file_info("etc/pwned.txt", b"escaped"),
    ])

    def dated(member, mtime, mode=None):
        member[0].mtime = mtime
        if mode is not None:
            member[0].mode = mode
        return member

    read_only = tarfile.TarInfo("ro")
    read_only.type = tarfile.DIRTYPE
    tar_with(os.path.join(out, "tar-semantics.tar"), [
        file_info("appspec.yml", appspec),
        dated((read_only, None), 1_000_000_000, 0o555),
        dated(file_info("ro/f", b"in a read-only directory"), 1_200_000_000),
        file_info("dup.txt", b"one"),
        file_info("dup.txt", b"two"),
        file_info("swap", b"a file first"),
        link_info("swap", "dup.txt"),
        dated(file_info("setuid", b"#!/bin/sh\n"), 1_300_000_000, 0o4755),
        link_info("hl", "dup.txt", tarfile.LNKTYPE),
    ])

    print(f"wrote hostile bundles into {out}")


if __name__ == "__main__":
    main()
