import AppSpec
import ArgumentParser
import Bundles
import ControlPlane
import DeployClient
import DeployModel
import Foundation
import Revisions
import Synchronization

extension ArchiveFormat: ExpressibleByArgument {}

/// `--output` for the commands that are not API operations: json or text.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `validate --output`: also GitHub Actions annotations and SARIF for code-scanning dashboards.
enum ValidationOutput: String, ExpressibleByArgument, CaseIterable {
    case text, json, github, sarif
}

/// The long options of `deployctl validate`, declared once for ArgumentParser and ``PlainArguments``.
enum ValidateOption: String, PlainOptions {
    case bundle
    case source
    case bundleType = "bundle-type"
    case appSpecFileName = "appspec-filename"
    case ignoreHiddenFiles = "ignore-hidden-files"
    case output
    case strict

    var kind: PlainOptionKind { self == .ignoreHiddenFiles || self == .strict ? .flag : .value }
}

/// `deployctl validate`: checks a bundle or a source directory before it is uploaded.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        _superCommandName: "deployctl",
        abstract: "Check a bundle or a source directory before you ship it (deployctl extension).",
        discussion: """
            Checks that the archive is safe to extract, that the appspec is valid (every problem is reported with its rule \
            code, file, line, column and key), that every hook script exists in the revision (and warns when one is not \
            executable), and that every files source exists. Exits 0 when there is no error (warnings allowed; --strict \
            counts them), 1 when there is at least one, 2 when the revision cannot be read at all (a missing directory, an \
            unreadable or unsafe bundle). --output json (with a schemaVersion), github (workflow annotations) or sarif \
            (SARIF 2.1.0, for code-scanning dashboards) for CI.
            """)

    @Option(name: ValidateOption.bundle.name, help: ArgumentHelp("A bundle file (zip, tar or tgz) to check.", valueName: "path"))
    var bundle: String?

    @Option(
        name: ValidateOption.source.name,
        help: ArgumentHelp("A directory to check, as push would bundle it (default: the current directory).", valueName: "dir"))
    var source: String?

    @Option(
        name: ValidateOption.bundleType.name,
        help: ArgumentHelp("The bundle's type, when it must be enforced; detected from the content otherwise.", valueName: "zip|tar|tgz"))
    var bundleType: ArchiveFormat?

    @Option(
        name: ValidateOption.appSpecFileName.name,
        help: ArgumentHelp("The appspec's name at the revision root (default appspec.yml, then appspec.yaml).", valueName: "name"))
    var appSpecFileName: String?

    @Flag(
        name: ValidateOption.ignoreHiddenFiles.name,
        help: "With --source: leave out files and directories whose name starts with a dot, as push would.")
    var ignoreHidden = false

    @Option(
        name: ValidateOption.output.name,
        help: ArgumentHelp("text (default); json, github or sarif for CI.", valueName: "text|json|github|sarif"))
    var output: ValidationOutput = .text

    @Flag(name: ValidateOption.strict.name, help: "Fail (exit 1) on warnings too.")
    var strict = false

    func validate() throws {
        if bundle != nil, source != nil { throw ValidationError("Give either --bundle or --source, not both.") }
    }

    func run() throws {
        let target = bundle ?? source ?? "."
        let report =
            bundle != nil
            ? RevisionValidator.validate(bundle: target, declaredType: bundleType, appSpecFileName: appSpecFileName)
            : RevisionValidator.validate(directory: target, appSpecFileName: appSpecFileName, ignoreHidden: ignoreHidden)
        let text: String
        switch output {
        case .text: text = ReportRendering.render(report, target: target, format: .text)
        case .json: text = ReportRendering.render(report, target: target, format: .json)
        case .github: text = ReportRendering.github(report, target: target)
        case .sarif: text = ReportRendering.sarif(report, target: target)
        }
        try StandardStreams.out(text)
        if report.isUnreadable { throw CLIFailure.unreadable }
        if !report.isValid || (strict && !report.warnings.isEmpty) { throw CLIFailure.problemsFound }
    }
}

enum ReportRendering {
    static func render(_ report: ValidationReport, target: String, format: ReportFormat) -> String {
        switch format {
        case .text:
            var out = report.findings.map { $0.codedDescription + "\n" }.joined()
            let counts =
                "\(report.errors.count) error\(report.errors.count == 1 ? "" : "s"), \(report.warnings.count) warning\(report.warnings.count == 1 ? "" : "s")"
            out += report.isValid ? "\(target): valid (\(report.appSpecPath ?? "no appspec"), \(counts))\n" : "\(target): invalid (\(counts))\n"
            return out
        case .json:
            let findings = report.findings.map { finding -> JSONValue in
                var members: [(String, JSONValue)] = [("severity", .string(finding.severity.rawValue)), ("file", .string(finding.file))]
                if let position = finding.position {
                    members += [("line", .int(position.line)), ("column", .int(position.column))]
                }
                members += [("key", .string(finding.keyPath)), ("message", .string(finding.message)), ("text", .string(finding.description))]
                return .members([("code", .string(finding.code))] + members)
            }
            let document = JSONValue.members([
                ("schemaVersion", .int(2)), ("target", .string(target)), ("valid", .bool(report.isValid)),
                ("readable", .bool(!report.isUnreadable)),
                ("appspec", report.appSpecPath.map { .string($0) } ?? .null), ("errors", .int(report.errors.count)),
                ("warnings", .int(report.warnings.count)), ("findings", .array(findings)),
            ])
            return document.rendered() + "\n"
        }
    }

    /// Where a finding is, relative to the working directory, for annotations and SARIF: the revision's file under
    /// the directory checked, or the bundle itself.
    static func location(_ finding: Finding, target: String, isBundle: Bool) -> String {
        if isBundle || finding.file == target || finding.file.hasPrefix("/") { return isBundle ? target : finding.file }
        return target == "." ? finding.file : (target.hasSuffix("/") ? target : target + "/") + finding.file
    }

    /// GitHub Actions workflow commands: `::error file=…,line=…,col=…,title=AS117::message`.
    static func github(_ report: ValidationReport, target: String) -> String {
        let isBundle = !FileManager.default.isDirectory(target)
        func escape(_ text: String, property: Bool) -> String {
            var out = text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D")
                .replacingOccurrences(of: "\n", with: "%0A")
            if property { out = out.replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C") }
            return out
        }
        return report.findings.map { finding in
            var properties = ["file=" + escape(location(finding, target: target, isBundle: isBundle), property: true)]
            if let position = finding.position { properties += ["line=\(position.line)", "col=\(position.column)"] }
            properties.append("title=" + escape("\(finding.code) \(finding.keyPath)".trimmingCharacters(in: .whitespaces), property: true))
            let message = (finding.keyPath.isEmpty ? "" : finding.keyPath + ": ") + finding.message
            return "::\(finding.severity.rawValue) \(properties.joined(separator: ","))::\(escape(message, property: false))\n"
        }.joined()
    }

    /// SARIF 2.1.0: one run of deployctl with a rule per code found and a result per finding.
    static func sarif(_ report: ValidationReport, target: String) -> String {
        let isBundle = !FileManager.default.isDirectory(target)
        var codes: [String] = []
        for finding in report.findings where !codes.contains(finding.code) { codes.append(finding.code) }
        let rules = codes.sorted().map { code -> JSONValue in
            .members([("id", .string(code))])
        }
        let results = report.findings.map { finding -> JSONValue in
            var region: [(String, JSONValue)] = []
            if let position = finding.position { region = [("startLine", .int(position.line)), ("startColumn", .int(position.column))] }
            var physical: [(String, JSONValue)] = [
                ("artifactLocation", .members([("uri", .string(location(finding, target: target, isBundle: isBundle)))]))
            ]
            if !region.isEmpty { physical.append(("region", .members(region))) }
            return .members([
                ("ruleId", .string(finding.code)), ("level", .string(finding.severity == .error ? "error" : "warning")),
                ("message", .members([("text", .string((finding.keyPath.isEmpty ? "" : finding.keyPath + ": ") + finding.message))])),
                ("locations", .array([.members([("physicalLocation", .members(physical))])])),
            ])
        }
        let document = JSONValue.members([
            ("$schema", .string("https://json.schemastore.org/sarif-2.1.0.json")), ("version", .string("2.1.0")),
            (
                "runs",
                .array([
                    .members([
                        (
                            "tool",
                            .members([
                                (
                                    "driver",
                                    .members([
                                        ("name", .string("deployctl")), ("version", .string(DeployctlCommand.configuration.version)),
                                        ("rules", .array(rules)),
                                    ])
                                )
                            ])
                        ),
                        ("results", .array(results)),
                    ])
                ])
            ),
        ])
        return document.rendered() + "\n"
    }
}

extension FileManager {
    func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }
}

/// `deployctl push`: the aws CLI's `deploy push`, into the built-in artifact store.
struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        _superCommandName: "deployctl",
        abstract: "Bundle a directory, store it in the artifact store and register it as a revision.",
        discussion: """
            Like `aws deploy push`: validates the directory (as `deployctl validate --source` does; errors stop the push), \
            bundles it, stores it at s3://BUCKET/KEY in the artifact store beside the state file (eTag = SHA-256 of the \
            bundle, plus a version ID), registers the revision with the application, and prints the create-deployment command \
            that deploys it.
            """)

    @Option(
        name: .customLong("application-name"), help: ArgumentHelp("The application to register the revision with. (required)", valueName: "string"))
    var applicationName: String

    @Option(
        name: .customLong("s3-location"), help: ArgumentHelp("Where to store the bundle: s3://BUCKET/KEY. (required)", valueName: "s3://bucket/key"))
    var s3Location: String

    @Option(
        name: .customLong("source"),
        help: ArgumentHelp("The directory to bundle (default: the current directory). It must hold appspec.yml.", valueName: "dir"))
    var source: String = "."

    @Option(
        name: .customLong("description"),
        help: ArgumentHelp("The revision's description (default: Uploaded by deployctl <time>).", valueName: "string"))
    var description: String?

    @Option(name: .customLong("bundle-type"), help: ArgumentHelp("zip (default), tar or tgz.", valueName: "zip|tar|tgz"))
    var bundleType: ArchiveFormat = .zip

    @Flag(
        name: .customLong("ignore-hidden-files"), inversion: .prefixedNo,
        help: "Leave out files and directories whose name starts with a dot (default: include them).")
    var ignoreHidden = false

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let api = try global.openAPI()
        let result: PushResult
        do {
            // On a terminal, a progress line while the bundle is written and then uploaded.
            let shown = Mutex<TransferProgress?>(nil)
            result = try await RevisionPush.push(
                applicationName: applicationName, s3Location: s3Location, source: source, description: description, bundleType: bundleType,
                ignoreHidden: ignoreHidden, api: api, artifacts: global.openUploader()
            ) { phase in
                shown.withLock { current in
                    current?.stop()
                    switch phase {
                    case .bundling(let path): current = TransferProgress.start("bundling", .writing(path: path))
                    case .uploading(let path, let bytes): current = TransferProgress.start("uploading", .reading(path: path, total: bytes))
                    case .done: current = nil
                    }
                }
            }
        } catch let error as PushError {
            switch error {
            case .invalidS3Location: throw CLIFailure.usage(error.description)
            case .invalidRevision(let report):
                StandardStreams.err(ReportRendering.render(report, target: source, format: .text))
                throw CLIFailure.problemsFound
            default: throw CLIFailure.other(error.description)
            }
        } catch {
            throw CLIFailure.mapping(error, calling: "RegisterApplicationRevision")
        }
        for warning in result.report.warnings {
            StandardStreams.err(warning.description + "\n")
        }
        let location = result.location
        var shorthand = "bucket=\(location.bucket ?? ""),key=\(location.key ?? ""),bundleType=\(location.bundleType?.rawValue ?? "zip")"
        shorthand += ",eTag=\(location.eTag ?? ""),version=\(location.version ?? "")"
        let command =
            "deployctl create-deployment --application-name \(result.applicationName) --s3-location \(shorthand) --deployment-group-name <deployment-group-name> --deployment-config-name <deployment-config-name> --description <description>"
        // As `aws deploy push`, a message for people; JSON (and --query) when asked for (--output json, or the environment).
        if global.explicitOutput == .json || global.query != nil {
            let revision = JSONValue.members([
                ("revisionType", .string("S3")),
                (
                    "s3Location",
                    .members([
                        ("bucket", .string(location.bucket ?? "")), ("key", .string(location.key ?? "")),
                        ("bundleType", .string(location.bundleType?.rawValue ?? "zip")), ("eTag", .string(location.eTag ?? "")),
                        ("version", .string(location.version ?? "")),
                    ])
                ),
            ])
            let document = JSONValue.members([
                ("applicationName", .string(result.applicationName)), ("description", .string(result.description)), ("revision", revision),
                ("bundle", .members([("entries", .int(result.entries)), ("bytes", .int(Int(result.bytes)))])),
                ("warnings", .array(result.report.warnings.map { .string($0.description) })), ("createDeploymentCommand", .string(command)),
            ])
            try StandardStreams.out(try global.render(document, operation: "Push"))
            return
        }
        print("To deploy with this revision, run:\n" + command)
    }
}

/// `deployctl bundle …`: inspect, extract and create bundles with the same safety rules deployments use.
struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        _superCommandName: "deployctl",
        abstract: "List, extract or create revision bundles (deployctl extension).",
        subcommands: [List.self, Extract.self, Create.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", _superCommandName: "deployctl bundle", abstract: "List a bundle's entries after checking that it is safe.")

        @Option(name: .customLong("bundle"), help: ArgumentHelp("The bundle file.", valueName: "path"))
        var bundle: String

        @Option(name: .customLong("bundle-type"), help: ArgumentHelp("Enforce this type; detected otherwise.", valueName: "zip|tar|tgz"))
        var bundleType: ArchiveFormat?

        func run() throws {
            do {
                for entry in try BundleArchive.entries(of: bundle, declaredType: bundleType) {
                    let mode = String(entry.mode, radix: 8)
                    let link = entry.linkTarget.map { " -> \($0)" } ?? ""
                    print("\(entry.kind.rawValue)\t\(mode)\t\(entry.size)\t\(entry.path)\(link)")
                }
            } catch {
                throw CLIFailure.other(error.description)
            }
        }
    }

    struct Extract: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "extract",
            _superCommandName: "deployctl bundle",
            abstract: "Extract a bundle into a new directory, refusing unsafe entries; nothing is left behind on failure.")

        @Option(name: .customLong("bundle"), help: ArgumentHelp("The bundle file.", valueName: "path"))
        var bundle: String

        @Option(name: .customLong("into"), help: ArgumentHelp("The directory to create (it may exist if empty).", valueName: "dir"))
        var into: String

        @Option(name: .customLong("bundle-type"), help: ArgumentHelp("Enforce this type; detected otherwise.", valueName: "zip|tar|tgz"))
        var bundleType: ArchiveFormat?

        @Option(name: .customLong("max-bytes"), help: ArgumentHelp("Refuse bundles that expand to more bytes (default 10 GiB).", valueName: "n"))
        var maxBytes: Int64 = BundleLimits.default.maxTotalBytes

        @Option(name: .customLong("max-entries"), help: ArgumentHelp("Refuse bundles with more entries (default 1,000,000).", valueName: "n"))
        var maxEntries: Int = BundleLimits.default.maxEntries

        func validate() throws {
            try NumberRange.check("--max-bytes", Int(maxBytes), 1...Int(Int64.max))
            try NumberRange.check("--max-entries", maxEntries, 1...100_000_000)
        }

        func run() throws {
            do {
                let size = (try? FileManager.default.attributesOfItem(atPath: bundle)[.size] as? NSNumber)?.int64Value ?? 0
                let summary = try TransferProgress.showing("extracting", .reading(path: bundle, total: size)) { () throws(BundleError) in
                    try BundleArchive.extract(
                        bundle, declaredType: bundleType, into: into, limits: BundleLimits(maxTotalBytes: maxBytes, maxEntries: maxEntries))
                }
                print("extracted \(summary.entries) entries, \(summary.bytes) bytes into \(into)")
            } catch {
                throw CLIFailure.other(error.description)
            }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", _superCommandName: "deployctl bundle", abstract: "Create a bundle from a directory (what push uploads).")

        @Option(name: .customLong("source"), help: ArgumentHelp("The directory to bundle.", valueName: "dir"))
        var source: String

        @Option(name: .customLong("bundle"), help: ArgumentHelp("The bundle file to write.", valueName: "path"))
        var bundle: String

        @Option(name: .customLong("bundle-type"), help: ArgumentHelp("zip (default), tar or tgz.", valueName: "zip|tar|tgz"))
        var bundleType: ArchiveFormat = .zip

        @Flag(name: .customLong("ignore-hidden-files"), help: "Leave out files and directories whose name starts with a dot.")
        var ignoreHidden = false

        func run() throws {
            do {
                let summary = try TransferProgress.showing("bundling", .writing(path: bundle)) { () throws(BundleError) in
                    try BundleArchive.create(from: source, to: bundle, type: bundleType, ignoreHidden: ignoreHidden)
                }
                print("wrote \(bundle): \(summary.entries) entries, \(summary.bytes) bytes")
            } catch {
                throw CLIFailure.other(error.description)
            }
        }
    }
}
