#!/usr/bin/env python3
"""Writes a man page per subcommand of a built deployctl, from its own description of its commands
(`deployctl --experimental-dump-help`, swift-argument-parser's ToolInfo), so the pages cannot drift from the flags.

Usage: python3 Scripts/generate-man.py BINARY OUTPUT_DIR   (then `man -l OUTPUT_DIR/deployctl-push.1`)
"""
import datetime
import json
import os
import subprocess
import sys


def escape(text):
    """Text for roff: backslashes doubled, a leading dot or quote protected, dashes kept as dashes."""
    text = (text or "").replace("\\", "\\\\").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.split("\n"))


def flag_names(argument):
    names = []
    for name in argument.get("names", []):
        names.append(("--" if name["kind"] == "long" else "-") + name["name"])
    return names


def synopsis(command, path):
    parts = [f"\\fB{escape(' '.join(path))}\\fR"]
    for argument in command.get("arguments", []):
        if not argument.get("shouldDisplay", True):
            continue
        names = flag_names(argument)
        if argument["kind"] == "positional":
            parts.append(f"\\fI{escape(argument.get('valueName', 'value'))}\\fR")
        elif names:
            value = "" if argument["kind"] == "flag" else f" \\fI{escape(argument.get('valueName', 'value'))}\\fR"
            item = f"\\fB{escape(names[0])}\\fR{value}"
            parts.append(item if not argument.get("isOptional", True) else f"[{item}]")
    return " ".join(parts)


def page(command, path, date, version):
    name = "-".join(path)
    lines = [
        f'.TH "{name.upper()}" "1" "{date}" "deployctl {version}" "deployctl manual"',
        ".SH NAME",
        f"{escape(name)} \\- {escape(command.get('abstract', ''))}",
        ".SH SYNOPSIS",
        synopsis(command, path),
    ]
    if command.get("discussion"):
        lines += [".SH DESCRIPTION", escape(command["discussion"])]
    options = [a for a in command.get("arguments", []) if a.get("shouldDisplay", True)]
    if options:
        lines.append(".SH OPTIONS")
        for argument in options:
            names = flag_names(argument) or [argument.get("valueName", "value")]
            value = "" if argument["kind"] in ("flag", "positional") else f" \\fI{escape(argument.get('valueName', 'value'))}\\fR"
            lines += [".TP", ", ".join(f"\\fB{escape(n)}\\fR" for n in names) + value, escape(argument.get("abstract", ""))]
            if argument.get("discussion"):
                lines.append(escape(argument["discussion"]))
    subcommands = [s for s in command.get("subcommands", []) if s.get("shouldDisplay", True)]
    if subcommands:
        lines.append(".SH SUBCOMMANDS")
        for sub in subcommands:
            lines += [".TP", f"\\fB{escape(sub['commandName'])}\\fR", escape(sub.get("abstract", ""))]
    see = ["deployctl(1)"] if len(path) > 1 else []
    see += [f"{'-'.join(path + [s['commandName']])}(1)" for s in subcommands]
    if see:
        lines += [".SH SEE ALSO", ", ".join(f"\\fB{escape(s.split('(')[0])}\\fR({s.split('(')[1]}" for s in see)]
    lines += [".SH EXIT STATUS", "0 success, 252 bad usage or invalid parameters, 254 the operation refused the request, "
              "255 anything else (aws CLI v2's codes); validate: 1 findings, 2 an unreadable revision."]
    return name, "\n".join(lines) + "\n"


def walk(command, path, date, version, out):
    name, text = page(command, path, date, version)
    out[name] = text
    for sub in command.get("subcommands", []):
        if sub.get("shouldDisplay", True):
            walk(sub, path + [sub["commandName"]], date, version, out)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, directory = sys.argv[1], sys.argv[2]
    info = json.loads(subprocess.run([binary, "--experimental-dump-help"], capture_output=True, text=True, check=True).stdout)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    # The date of the source, not of the build, so the pages are the same on every machine.
    stamp = subprocess.run(["git", "log", "-1", "--format=%cs"], capture_output=True, text=True,
                           cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or datetime.date.today().isoformat()
    pages = {}
    walk(info["command"], [info["command"]["commandName"]], stamp, version, pages)
    os.makedirs(directory, exist_ok=True)
    for name, text in pages.items():
        with open(os.path.join(directory, name + ".1"), "w", encoding="utf-8") as f:
            f.write(text)
    print(f"{len(pages)} man pages in {directory}")


if __name__ == "__main__":
    main()
