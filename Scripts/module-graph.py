#!/usr/bin/env python3
"""Prints deployctl's target graph from Package.swift, and checks the layering ARCHITECTURE.md describes.

  python3 Scripts/module-graph.py            the graph: each target, what it depends on (targets, then products)
  python3 Scripts/module-graph.py --check    exit 1 if a rule below is broken (run by `make test`)

The rules: the control plane and the modules under it never reach GRDB (SQL lives in DeployStoreSQLite only),
and no library reaches the CLI. The check also holds ARCHITECTURE.md's module table to Package.swift: every module
it names exists, every module is named, and each row lists every module its target depends on directly.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RULES = [
    # (target, forbidden anywhere in its transitive closure, why)
    ("ControlPlane", "GRDB", "the rules must not see SQL: only DeployStoreSQLite imports GRDB"),
    ("DeployStore", "GRDB", "the store protocol is in domain terms"),
    ("Agent", "GRDB", "the agent talks to a HostCommandService, never to the store"),
    ("Agent", "ControlPlane", "the agent talks to a HostCommandService, never to the control plane's code"),
    ("Revisions", "ControlPlane", "push talks to CodeDeployAPI"),
    ("ControlPlane", "DeployCLI", "libraries never reach the CLI"),
    ("ControlPlane", "Hummingbird", "the rules know nothing of HTTP: DeployServer is the transport"),
    ("DeployServer", "GRDB", "the server talks to the store protocol; SQL stays in DeployStoreSQLite"),
    ("DeployServer", "DeployCLI", "libraries never reach the CLI"),
    ("DeployClient", "ControlPlane", "the remote client speaks the wire only; the rules run on the server"),
    ("DeployClient", "Hummingbird", "the client does not carry the server"),
    ("JMESPath", "ControlPlane", "the query language works on any JSON, knowing nothing of deployments"),
    ("JMESPath", "DeployStore", "the query language works on any JSON, knowing nothing of deployments"),
]


def describe():
    out = subprocess.run(["swift", "package", "describe", "--type", "json"], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    graph = {}
    for target in data["targets"]:
        graph[target["name"]] = (target.get("target_dependencies", []), target.get("product_dependencies", []), target["type"])
    return graph


def closure(graph, name):
    """Every target `name` depends on, directly or not, and every product those targets use."""
    seen, stack = set(), [name]
    while stack:
        for dep in graph.get(stack.pop(), ([], [], ""))[0]:
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    products = set()
    for target in seen | {name}:
        products.update(graph.get(target, ([], [], ""))[1])
    return seen, products


def documented_modules():
    """{module: the text of its "depends on" cell} from ARCHITECTURE.md's module table."""
    rows = {}
    section = None
    for line in open(os.path.join(ROOT, "ARCHITECTURE.md"), encoding="utf-8"):
        if line.startswith("## "):
            section = line[3:].strip()
        # Only the table of the "Modules" section: other tables (threads, states) name other things.
        match = re.match(r"^\| `([A-Za-z]+)` \|(.*)\|([^|]*)\|\s*$", line)
        if match and section == "Modules":
            rows[match.group(1)] = match.group(3)
    return rows


def table_drift(graph):
    """What ARCHITECTURE.md's module table says that Package.swift does not, and the reverse."""
    rows = documented_modules()
    # Test targets, and the C shims the Swift modules wrap, are not modules of the table.
    modules = {name for name, (_, _, kind) in graph.items() if kind != "test" and not re.match(r"^C[A-Z]", name) and name != "TestSupport"}
    drift = [f"ARCHITECTURE.md names {name}, which is not a target" for name in sorted(set(rows) - modules)]
    drift += [f"ARCHITECTURE.md's module table does not name {name}" for name in sorted(modules - set(rows))]
    order = list(rows)
    for name in sorted(modules & set(rows)):
        listed = set(re.findall(r"[A-Za-z][A-Za-z0-9-]*", rows[name]))
        if "everything above" in rows[name]:
            listed |= set(order[:order.index(name)])
        for dep in graph[name][0]:
            if dep in modules and dep not in listed:
                drift.append(f"ARCHITECTURE.md: {name} depends on {dep}, which its row does not list")
    return drift


def main():
    graph = describe()
    if "--check" in sys.argv:
        # The checker must be able to fail: the CLI does reach GRDB (through DeployStoreSQLite).
        if "GRDB" not in closure(graph, "DeployCLI")[1]:
            sys.exit("layering: the checker found no path from DeployCLI to GRDB; it is broken")
        broken = []
        for target, forbidden, why in RULES:
            targets, products = closure(graph, target)
            if forbidden in targets or forbidden in products:
                broken.append(f"{target} reaches {forbidden}: {why}")
        broken += table_drift(graph)
        for line in broken:
            print("layering: " + line, file=sys.stderr)
        if broken:
            sys.exit(1)
        print(f"layering: {len(RULES)} rules hold; ARCHITECTURE.md names every module and its dependencies")
        return
    for name in sorted(graph, key=lambda n: (graph[n][2] == "test", n)):
        targets, products, kind = graph[name]
        deps = ", ".join(sorted(targets)) or "-"
        extra = f"   [{', '.join(sorted(products))}]" if products else ""
        print(f"{name:20} {kind:10} -> {deps}{extra}")


if __name__ == "__main__":
    main()
