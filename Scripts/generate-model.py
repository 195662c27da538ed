#!/usr/bin/env python3
"""Generate deployctl's API shapes, service protocol and CLI commands from the CodeDeploy model.

botocore's CodeDeploy service model is the source of truth for operation names, member names, member order,
enum values, error names and flag names. The copy this script reads is committed in Scripts/model/ (taken from
botocore 1.43.11; `--refresh` copies the installed botocore's model over it), so the generated files never drift
with the machine's botocore: `make check-generated` (part of `make test`) fails when they differ from what this
script writes. It writes three Swift files that are committed (so a build needs no Python):

  Sources/DeployModel/Generated/Shapes.swift          Codable structs and enums
  Sources/DeployModel/Generated/CodeDeployAPI.swift   the service protocol, the operation table, error codes
  Sources/DeployCLI/Generated/OperationCommands.swift one command per operation

Run it again after changing OPERATIONS below: `make generate`.
"""
import gzip
import html
import json
import yaml
import os
import re
import subprocess
import sys

import botocore
import botocore.model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "Scripts", "model", "codedeploy-2014-10-06.json")
# botocore's paginators for CodeDeploy: which operations take --max-items/--starting-token, and their result key.
PAGINATORS = os.path.join(ROOT, "Scripts", "model", "codedeploy-2014-10-06.paginators.json")

# The operations deployctl serves, in the order they appear in `deployctl --help`.
OPERATIONS = [
    "CreateApplication", "GetApplication", "ListApplications", "BatchGetApplications",
    "UpdateApplication", "DeleteApplication",
    "CreateDeploymentConfig", "GetDeploymentConfig", "ListDeploymentConfigs", "DeleteDeploymentConfig",
    "CreateDeploymentGroup", "GetDeploymentGroup", "ListDeploymentGroups", "BatchGetDeploymentGroups",
    "UpdateDeploymentGroup", "DeleteDeploymentGroup",
    "RegisterOnPremisesInstance", "DeregisterOnPremisesInstance", "GetOnPremisesInstance",
    "ListOnPremisesInstances", "BatchGetOnPremisesInstances",
    "AddTagsToOnPremisesInstances", "RemoveTagsFromOnPremisesInstances",
    "RegisterApplicationRevision", "GetApplicationRevision", "ListApplicationRevisions",
    "BatchGetApplicationRevisions",
    "CreateDeployment", "GetDeployment", "ListDeployments", "BatchGetDeployments", "StopDeployment",
    "ListDeploymentTargets", "GetDeploymentTarget", "BatchGetDeploymentTargets",
    "ListDeploymentInstances", "GetDeploymentInstance", "BatchGetDeploymentInstances",
    "TagResource", "UntagResource", "ListTagsForResource",
    "ContinueDeployment", "SkipWaitTimeForInstanceTermination", "PutLifecycleEventHookExecutionStatus",
    "DeleteGitHubAccountToken", "ListGitHubAccountTokenNames", "DeleteResourcesByExternalId",
]

# The aws CLI's `--s3-location` / `--github-location` shortcuts (awscli/customizations/codedeploy/locationargs.py).
REVISION_SHORTCUT_OPERATIONS = {"CreateDeployment", "RegisterApplicationRevision", "GetApplicationRevision"}

# Members the model requires that deployctl does not need (there is no IAM here).
OPTIONAL_MEMBERS = {("CreateDeploymentGroupInput", "serviceRoleArn")}

# Values real CodeDeploy sends that its own model does not list (GetDeploymentConfig of OneAtATime).
EXTRA_ENUM_VALUES = {"MinimumHealthyHostsType": ["MOST_CONCURRENCY"]}

SWIFT_KEYWORDS = {"default", "protocol", "class", "struct", "enum", "case", "in", "is", "as", "func",
                  "var", "let", "return", "extension", "operator", "internal", "public", "private", "static",
                  "import", "init", "self", "Self", "where", "while", "for", "if", "else", "switch", "repeat",
                  "throw", "throws", "try", "catch", "do", "guard", "defer", "nil", "true", "false", "super",
                  "subscript", "deinit", "typealias", "associatedtype", "inout", "break", "continue", "fallthrough"}


def strip_doc(text, limit=None):
    text = re.sub(r"</?(code|i|b|a|em|strong)( [^>]*)?>", "", text or "")
    text = re.sub(r"<[^>]+>", " ", text)
    text = html.unescape(text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([.,;:)])", r"\1", text)
    if limit and len(text) > limit:
        cut = text[:limit]
        stop = cut.rfind(". ")
        text = cut[: stop + 1] if stop > 40 else cut.rstrip() + "…"
    return text


def first_sentence(text):
    text = strip_doc(text)
    m = re.match(r"(.+?\.)(\s|$)", text)
    return m.group(1) if m else text


def swift_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def swift_text(text):
    """A Swift string literal of multi-line text."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def skeleton(shape, stack=None):
    """botocore's ArgumentGenerator, made deterministic (the first enum value, not a random one)."""
    stack = stack or []
    if shape is None:
        return {}
    stack = stack + [shape.name]
    if shape.type_name == "structure":
        if stack.count(shape.name) > 1:
            return {}
        return {name: skeleton(member, stack) for name, member in shape.members.items()}
    if shape.type_name == "list":
        return [skeleton(shape.member, stack)]
    if shape.type_name == "map":
        return {"KeyName": skeleton(shape.value, stack)}
    if shape.type_name == "string":
        return shape.enum[0] if shape.enum else ""
    if shape.type_name in ("integer", "long"):
        return 0
    if shape.type_name in ("float", "double"):
        return 0.0
    if shape.type_name == "boolean":
        return True
    if shape.type_name == "timestamp":
        return "1970-01-01T00:00:00"
    return ""


def lower_camel(name):
    if name.isupper() or "_" in name:
        parts = [p for p in re.split(r"[_\W]+", name) if p]
        out = parts[0].lower() + "".join(p.capitalize() for p in parts[1:])
    else:
        out = name[0].lower() + name[1:]
    out = re.sub(r"\W", "", out)
    if out and out[0].isdigit():
        out = "_" + out
    return f"`{out}`" if out in SWIFT_KEYWORDS else out


def bare(name):
    return name.strip("`")


class Generator:
    def __init__(self):
        with open(MODEL, encoding="utf-8") as f:
            self.model = botocore.model.ServiceModel(json.load(f), service_name="codedeploy")
        with open(PAGINATORS, encoding="utf-8") as f:
            self.paginators = json.load(f)["pagination"]
        self.structures = {}
        self.enums = {}
        for op in OPERATIONS:
            om = self.model.operation_model(op)
            for shape in (om.input_shape, om.output_shape):
                if shape is not None:
                    self.visit(shape)

    def visit(self, shape):
        if shape.type_name == "structure":
            if shape.name in self.structures:
                return
            self.structures[shape.name] = shape
            for member in shape.members.values():
                self.visit(member)
        elif shape.type_name == "list":
            self.visit(shape.member)
        elif shape.type_name == "map":
            self.visit(shape.value)
        elif shape.type_name == "string" and shape.enum:
            self.enums[shape.name] = shape

    def swift_type(self, shape):
        t = shape.type_name
        if t == "structure":
            return shape.name
        if t == "list":
            return f"[{self.swift_type(shape.member)}]"
        if t == "map":
            return f"[String: {self.swift_type(shape.value)}]"
        if t == "string":
            return shape.name if shape.enum else "String"
        if t in ("integer", "long"):
            return "Int"
        if t == "boolean":
            return "Bool"
        if t == "timestamp":
            return "Date"
        if t == "double":
            return "Double"
        raise SystemExit(f"unsupported shape type {t} ({shape.name})")

    # --- Shapes.swift -------------------------------------------------------------------------
    def shapes_file(self):
        out = [
            "// Generated by Scripts/generate-model.py from botocore's CodeDeploy model (API 2014-10-06).",
            "// Do not edit by hand: change the script and run `make generate`.",
            "",
            "import Foundation",
            "",
        ]
        for name in sorted(self.enums):
            out += self.enum_decl(self.enums[name])
        for name in sorted(self.structures):
            out += self.struct_decl(self.structures[name])
        return "\n".join(out) + "\n"

    def enum_decl(self, shape):
        values = list(shape.enum) + [v for v in EXTRA_ENUM_VALUES.get(shape.name, []) if v not in shape.enum]
        doc = first_sentence(shape.documentation) or f"The `{shape.name}` values of the API."
        lines = [f"/// {doc}" if shape.documentation else f"/// The `{shape.name}` values of the API.",
                 f"public enum {shape.name}: String, Codable, Sendable, CaseIterable, CustomStringConvertible {{"]
        for v in values:
            lines.append(f"    case {lower_camel(v)} = {swift_string(v)}")
        lines += [
            "",
            "    public var description: String { rawValue }",
            "",
            "    public init(from decoder: any Decoder) throws {",
            "        let raw = try decoder.singleValueContainer().decode(String.self)",
            "        guard let value = Self(rawValue: raw) else {",
            f"            throw InvalidEnumValue(type: {swift_string(shape.name)}, value: raw, validValues: Self.allCases.map(\\.rawValue), codingPath: decoder.codingPath)",
            "        }",
            "        self = value",
            "    }",
            "}",
            "",
        ]
        return lines

    def struct_decl(self, shape):
        required = {m for m in shape.required_members if (shape.name, m) not in OPTIONAL_MEMBERS}
        doc = first_sentence(shape.documentation)
        lines = []
        lines.append(f"/// {doc}" if doc else f"/// The `{shape.name}` shape of the API.")
        lines.append(f"public struct {shape.name}: Codable, Sendable, Equatable {{")
        members = list(shape.members.items())
        for mname, mshape in members:
            t = self.swift_type(mshape)
            opt = "" if mname in required else "?"
            mdoc = first_sentence(mshape.documentation)
            if mdoc:
                lines.append(f"    /// {mdoc}")
            lines.append(f"    public var {lower_camel(mname)}: {t}{opt}")
        if members:
            lines.append("")
            lines.append("    enum CodingKeys: String, CodingKey {")
            for mname, _ in members:
                lines.append(f"        case {lower_camel(mname)} = {swift_string(mname)}")
            lines.append("    }")
        params = []
        for mname, mshape in members:
            t = self.swift_type(mshape)
            if mname in required:
                params.append(f"{bare(lower_camel(mname))}: {t}")
            else:
                params.append(f"{bare(lower_camel(mname))}: {t}? = nil")
        lines.append("")
        if params:
            lines.append("    public init(")
            lines.append(",\n".join("        " + p for p in params))
            lines.append("    ) {")
            for mname, _ in members:
                n = lower_camel(mname)
                lines.append(f"        self.{bare(n)} = {n}")
            lines.append("    }")
        else:
            lines.append("    public init() {}")
        lines.append("}")
        lines.append("")
        return lines

    # --- OperationCommands.swift ---------------------------------------------------------------
    def shorthand_example(self, shape, depth=0):
        if shape.type_name == "structure":
            parts = []
            for mname, mshape in shape.members.items():
                parts.append(f"{mname}={self.shorthand_example(mshape, depth + 1)}")
            body = ",".join(parts)
            return "{" + body + "}" if depth else body
        if shape.type_name == "list":
            return "[" + self.shorthand_example(shape.member, depth + 1) + ",...]"
        if shape.type_name == "map":
            return "{KeyName=" + self.shorthand_example(shape.value, depth + 1) + "}"
        if shape.type_name == "string" and shape.enum:
            return "|".join(shape.enum)
        return shape.type_name

    def member_kind(self, mshape):
        t = mshape.type_name
        if t == "boolean":
            return "flag"
        if t == "list":
            return "structureList" if mshape.member.type_name in ("structure", "list", "map") else "scalarList"
        if t in ("structure", "map"):
            return "structure"
        return "scalar"

    def option_help(self, mshape, kind, required):
        text = strip_doc(mshape.documentation, limit=300)
        if mshape.type_name == "string" and mshape.enum:
            text += f" One of: {', '.join(mshape.enum)}."
        if kind == "scalarList" and mshape.member.type_name == "string" and mshape.member.enum:
            text += f" Values: {', '.join(mshape.member.enum)}."
        if kind in ("structure", "structureList"):
            target = mshape.member if kind == "structureList" else mshape
            text += f" Shorthand: {self.shorthand_example(target)} (or JSON, or file://PATH)."
        if required:
            text += " (required)"
        return text.strip()

    def value_name(self, mshape, kind):
        if kind == "scalar":
            return {"integer": "integer", "long": "integer", "timestamp": "timestamp"}.get(mshape.type_name, "string")
        if kind == "scalarList":
            return "string ..."
        if kind == "structureList":
            return "shorthand|json ..."
        return "shorthand|json"

    def command_decl(self, op):
        om = self.model.operation_model(op)
        shape = om.input_shape
        cmd = botocore.xform_name(op, "-")
        required = {m for m in shape.required_members if (shape.name, m) not in OPTIONAL_MEMBERS} if shape else set()
        abstract = first_sentence(om.documentation)
        discussion = strip_doc(om.documentation, limit=1200)
        out_type = om.output_shape.name if om.output_shape is not None and om.output_shape.members else None
        lines = [
            f"/// `deployctl {cmd}`: {abstract}",
            f"struct {op}Command: AsyncParsableCommand, OperationCommand {{",
            "    static let configuration = CommandConfiguration(",
            f"        commandName: {swift_string(cmd)},",
            '        _superCommandName: "deployctl",',
            f"        abstract: {swift_string(abstract)},",
            f"        discussion: {swift_string(discussion)}",
            "    )",
            f"    static let operationName = {swift_string(op)}",
            "    /// The input members, so service messages that name them can show their flags.",
            "    static let inputMembers: [String] = [" + ", ".join(swift_string(m) for m in (shape.members if shape else [])) + "]",
            "",
        ]
        builders = []
        members = list(shape.members.items()) if shape else []
        shortcut = op in REVISION_SHORTCUT_OPERATIONS
        for mname, mshape in members:
            kind = self.member_kind(mshape)
            flag = botocore.xform_name(mname, "-")
            prop = lower_camel(mname)
            req = mname in required and not (shortcut and mname == "revision")
            help_text = self.option_help(mshape, kind, req)
            vname = self.value_name(mshape, kind)
            help_expr = f"ArgumentHelp({swift_string(help_text)}, valueName: {swift_string(vname)})"
            if kind == "flag":
                lines.append(f"    @Flag(name: .customLong({swift_string(flag)}), inversion: .prefixedNo, help: ArgumentHelp({swift_string(help_text)}))")
                lines.append(f"    var {prop}: Bool?")
                builders.append(f"        if let {bare(prop)} {{ members.append(({swift_string(mname)}, .bool({bare(prop)}))) }}")
            elif kind in ("scalarList", "structureList"):
                lines.append(f"    @Option(name: .customLong({swift_string(flag)}), parsing: .upToNextOption, help: {help_expr})")
                lines.append(f"    var {prop}: [String] = []")
                fn = "scalarList" if kind == "scalarList" else "structureList"
                builders.append(
                    f"        if !{bare(prop)}.isEmpty {{ members.append(({swift_string(mname)}, try ArgumentValue.{fn}({bare(prop)}, flag: {swift_string('--' + flag)}))) }}")
            elif kind == "structure":
                lines.append(f"    @Option(name: .customLong({swift_string(flag)}), help: {help_expr})")
                lines.append(f"    var {prop}: String?")
                builders.append(
                    f"        if let {bare(prop)} {{ members.append(({swift_string(mname)}, try ArgumentValue.structure({bare(prop)}, flag: {swift_string('--' + flag)}))) }}")
            else:
                lines.append(f"    @Option(name: .customLong({swift_string(flag)}), help: {help_expr})")
                lines.append(f"    var {prop}: String?")
                builders.append(
                    f"        if let {bare(prop)} {{ members.append(({swift_string(mname)}, .string(try ArgumentValue.contents({bare(prop)}, flag: {swift_string('--' + flag)})))) }}")
            lines.append("")
        if shortcut:
            lines += [
                '    @Option(name: .customLong("s3-location"), help: ArgumentHelp("The revision in the artifact store: bucket=string,key=string,bundleType=tar|tgz|zip[,eTag=string][,version=string]. Replaces --revision.", valueName: "shorthand"))',
                "    var s3Location: String?",
                "",
                '    @Option(name: .customLong("github-location"), help: ArgumentHelp("A GitHub revision: repository=string,commitId=string. Replaces --revision.", valueName: "shorthand"))',
                "    var githubLocation: String?",
                "",
            ]
            builders.append(
                "        if let revision = try ArgumentValue.revisionShortcut(s3Location: s3Location, githubLocation: githubLocation) { members.append((\"revision\", revision)) }")
        if op == "CreateDeployment":
            lines += [
                '    @Flag(name: .customLong("wait"), help: "Follow the deployment until it ends, with a live per-instance view; exit non-zero unless it succeeds (deployctl extension).")',
                "    var wait = false",
                "",
                '    @Option(name: .customLong("timeout"), help: ArgumentHelp("With --wait: give up after this many seconds (default: no limit).", valueName: "seconds"))',
                "    var timeout: Double?",
                "",
                "    func validate() throws {",
                '        if let timeout { try NumberRange.check("--timeout", timeout, NumberRange.waitSeconds) }',
                "    }",
                "",
            ]
        om = self.model.operation_model(op)
        input_skeleton = skeleton(om.input_shape)
        lines += [
            "    static let inputSkeleton = " + swift_text(json.dumps(input_skeleton, indent=4, ensure_ascii=False) + "\n"),
            "    static let outputSkeleton = " + swift_text(json.dumps(skeleton(om.output_shape), indent=4, ensure_ascii=False) + "\n"),
            "    static let yamlInputSkeleton = " + swift_text(yaml.safe_dump(input_skeleton, sort_keys=False, allow_unicode=True) if input_skeleton else "{}\n"),
            "",
        ]
        paginator = self.paginators.get(op)
        if paginator:
            lines += [
                "    static let paginator: Paginator? = Paginator("
                f"inputToken: {swift_string(paginator['input_token'])}, outputToken: {swift_string(paginator['output_token'])}, "
                f"resultKey: {swift_string(paginator['result_key'])})",
                "    @OptionGroup var pagination: PaginationOptions",
                "    var paginationOptions: PaginationOptions? { pagination }",
                "",
            ]
        lines += [
            "    @OptionGroup var cliInput: CLIInputOptions",
            "    @OptionGroup var global: GlobalOptions",
            "",
            "    /// The members given as flags, in model order, before `--cli-input-json` is merged under them.",
            "    func flagMembers() throws -> [(String, JSONValue)] {",
            "        var members: [(String, JSONValue)] = []",
        ]
        lines += builders
        lines += [
            "        return members",
            "    }",
            "",
            "    func run() async throws {",
        ]
        method = lower_camel(op)
        in_type = shape.name if shape else None
        if op == "CreateDeployment":
            lines.append(f"        let output = try await invoke({in_type}.self) {{ api, input in try await api.{bare(method)}(input) }}")
            lines.append(
                "        if wait, let id = output?.deploymentId { try await DeploymentWaiter(global: global, timeout: timeout).wait(for: id) }")
        elif in_type and out_type:
            lines.append(f"        try await invoke({in_type}.self) {{ api, input in try await api.{bare(method)}(input) }}")
        elif in_type:
            lines.append(
                f"        try await invoke({in_type}.self) {{ api, input in try await api.{bare(method)}(input); return EmptyOutput() }}")
        lines += ["    }", "}", ""]
        return lines

    # --- CodeDeployAPI.swift -------------------------------------------------------------------
    def output_type(self, op):
        om = self.model.operation_model(op)
        return om.output_shape.name if om.output_shape is not None and om.output_shape.members else None

    def signature(self, op):
        """(documentation, method name, input type, output type or None) of an operation."""
        om = self.model.operation_model(op)
        return om.documentation, bare(lower_camel(op)), om.input_shape.name, self.output_type(op)

    def api_file(self):
        out = [
            "// Generated by Scripts/generate-model.py from botocore's CodeDeploy model (API 2014-10-06).",
            "// Do not edit by hand: change the script and run `make generate`.",
            "",
            "import Foundation",
            "",
            "/// The CodeDeploy API as deployctl serves it: one method per operation, the model's input and output shapes,",
            "/// failures as ``ServiceError`` with the model's exception names. The local control plane implements it over the",
            "/// state file; a remote client implements it over the wire; the CLI, `push`, `wait` and the server only ever",
            "/// see this protocol (ARCHITECTURE.md).",
            "public protocol CodeDeployAPI: Sendable {",
        ]
        for op in OPERATIONS:
            documentation, method, in_type, out_type = self.signature(op)
            out += [f"    /// {first_sentence(documentation)}"]
            if out_type:
                out.append(f"    func {method}(_ input: {in_type}) async throws -> {out_type}")
            else:
                out.append(f"    func {method}(_ input: {in_type}) async throws")
        out += ["}", ""]
        out += [
            "/// One operation of the API as data: its name and how to run it on JSON, for transports that dispatch by name",
            "/// (the AWS JSON 1.1 `X-Amz-Target` header, `--cli-input-json`).",
            "public struct CodeDeployOperation: Sendable {",
            "    /// The operation's name, as `X-Amz-Target: CodeDeploy_20141006.<name>` carries it.",
            "    public let name: String",
            "    /// Decodes the request, calls the API, encodes the response (an empty object when the operation has none).",
            "    public let invoke: @Sendable (any CodeDeployAPI, JSONValue, JSONValueEncoder) async throws -> JSONValue",
            "",
            "    /// The exceptions the model lists for each operation (a service-side refusal picks its name among them).",
            "    public static let errors: [String: Set<String>] = [",
        ]
        for op in OPERATIONS:
            names = sorted(e.name for e in self.model.operation_model(op).error_shapes)
            out.append(f"        {swift_string(op)}: [" + ", ".join(swift_string(n) for n in names) + "],")
        out += [
            "    ]",
            "",
            "    /// Every operation, by name.",
            "    public static let all: [String: CodeDeployOperation] = Dictionary(",
            "        uniqueKeysWithValues: list.map { ($0.name, $0) })",
            "",
            "    /// Every operation, in the order `deployctl --help` lists them.",
            "    public static let list: [CodeDeployOperation] = [",
        ]
        for op in OPERATIONS:
            _, method, in_type, out_type = self.signature(op)
            call = f"try await api.{method}(try JSONValueDecoder().decode({in_type}.self, from: request))"
            body = f"try encoder.encode({call})" if out_type else f"{call}; return .object([])"
            out += [
                f"        CodeDeployOperation(name: {swift_string(op)}) {{ api, request, encoder in",
                f"            {body}",
                "        },",
            ]
        out += ["    ]", "}", ""]
        out += [
            "/// A ``CodeDeployAPI`` that sends each operation by name as JSON: the remote client implements `call` (one",
            "/// signed JSON 1.1 request) and gets every operation from the extension below, so no operation is wired by hand.",
            "public protocol CodeDeployTransport: CodeDeployAPI {",
            "    /// Sends the operation's input shape as JSON (timestamps as epoch seconds) and answers its output shape as JSON;",
            "    /// a service failure throws the ``ServiceError`` the server named.",
            "    func call(_ operation: String, _ request: JSONValue) async throws -> JSONValue",
            "}",
            "",
            "extension CodeDeployTransport {",
        ]
        for op in OPERATIONS:
            _, method, in_type, out_type = self.signature(op)
            send = f"try await call({swift_string(op)}, try JSONValueEncoder().encode(input))"
            if out_type:
                out += [
                    f"    public func {method}(_ input: {in_type}) async throws -> {out_type} {{",
                    f"        try JSONValueDecoder(reportsUnknownMembers: false).decode({out_type}.self, from: {send})",
                    "    }",
                ]
            else:
                out += [f"    public func {method}(_ input: {in_type}) async throws {{ _ = {send} }}"]
        out += ["}", ""]
        errors = set()
        for op in OPERATIONS:
            for e in self.model.operation_model(op).error_shapes:
                errors.add(e.name)
        out += [
            "extension ServiceError {",
            "    /// The exception names the operations deployctl serves can answer with (the model's error shapes).",
            "    public enum Code {",
        ]
        for name in sorted(errors):
            const = lower_camel(name[:-len("Exception")] if name.endswith("Exception") else name)
            out.append(f"        public static let {bare(const)} = {swift_string(name)}")
        out += ["    }", "}", ""]
        return "\n".join(out) + "\n"

    def commands_file(self):
        out = [
            "// Generated by Scripts/generate-model.py from botocore's CodeDeploy model (API 2014-10-06).",
            "// Do not edit by hand: change the script and run `make generate`.",
            "",
            "import ArgumentParser",
            "import DeployModel",
            "",
            "/// Every API subcommand, in the order `deployctl --help` lists them.",
            "let operationCommands: [any ParsableCommand.Type] = [",
        ]
        out += [f"    {op}Command.self," for op in OPERATIONS]
        out += ["]", ""]
        for op in OPERATIONS:
            out += self.command_decl(op)
        return "\n".join(out) + "\n"


def refresh():
    """Copies the installed botocore's CodeDeploy model over the committed one (then run `make generate`)."""
    source = os.path.join(os.path.dirname(botocore.__file__), "data", "codedeploy", "2014-10-06", "service-2.json.gz")
    with gzip.open(source) as f:
        data = json.load(f)
    with open(MODEL, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    with open(os.path.join(os.path.dirname(source), "paginators-1.json"), encoding="utf-8") as f:
        paginators = json.load(f)
    with open(PAGINATORS, "w", encoding="utf-8") as f:
        json.dump(paginators, f, indent=1)
    print(f"copied the CodeDeploy model of botocore {botocore.__version__} to {MODEL}")


def main():
    if "--refresh" in sys.argv:
        refresh()
        return
    gen = Generator()
    targets = {
        os.path.join(ROOT, "Sources/DeployModel/Generated/Shapes.swift"): gen.shapes_file(),
        os.path.join(ROOT, "Sources/DeployModel/Generated/CodeDeployAPI.swift"): gen.api_file(),
        os.path.join(ROOT, "Sources/DeployCLI/Generated/OperationCommands.swift"): gen.commands_file(),
    }
    check = "--check" in sys.argv
    stale = []
    for path, text in targets.items():
        if check:
            formatted = subprocess.run(["swift", "format", "format", "--assume-filename", path], cwd=ROOT, input=text,
                                       capture_output=True, text=True, check=True).stdout
            with open(path, encoding="utf-8") as f:
                if f.read() != formatted:
                    stale.append(path)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        # Keep generated code in the repository's format (.swift-format) so lint stays clean.
        subprocess.run(["swift", "format", "format", "-i", path], cwd=ROOT, check=True)
    if stale:
        print("generated files are out of date (run `make generate`): " + ", ".join(stale), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
