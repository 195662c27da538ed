import AppSpec
import ArgumentParser
import Bundles
import ControlPlane
import DeployClient
import DeployModel
import Foundation
import Revisions

extension ArchiveFormat: ExpressibleByArgument {}

/// `--output` for the commands that are not API operations: json or text.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `deployctl validate`: checks a bundle or a source directory before it is uploaded.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a bundle or a source directory before you ship it (deployctl extension).",
        discussion: """
            Checks that the archive is safe to extract, that the appspec is valid (every problem is reported with its file, \
            line, column and key), that every hook script exists in the revision (and warns when one is not executable), and \
            that every files source exists. Exits 0 when there is no error (warnings allowed), 1 when there is at least one.
            """)

    @Option(name: .customLong("bundle"), help: ArgumentHelp("A bundle file (zip, tar or tgz) to check.", valueName: "path"))
    var bundle: String?

    @Option(
        name: .customLong("source"),
        help: ArgumentHelp("A directory to check, as push would bundle it (default: the current directory).", valueName: "dir"))
    var source: String?

    @Option(
        name: .customLong("bundle-type"),
        help: ArgumentHelp("The bundle's type, when it must be enforced; detected from the content otherwise.", valueName: "zip|tar|tgz"))
    var bundleType: ArchiveFormat?

    @Option(
        name: .customLong("appspec-filename"),
        help: ArgumentHelp("The appspec's name at the revision root (default appspec.yml, then appspec.yaml).", valueName: "name"))
    var appSpecFileName: String?

    @Flag(
        name: .customLong("ignore-hidden-files"), help: "With --source: leave out files and directories whose name starts with a dot, as push would.")
    var ignoreHidden = false

    @Option(name: .customLong("output"), help: ArgumentHelp("text (default) or json, a machine-readable report for CI.", valueName: "format"))
    var output: ReportFormat = .text

    func validate() throws {
        if bundle != nil, source != nil { throw ValidationError("Give either --bundle or --source, not both.") }
    }

    func run() throws {
        let target = bundle ?? source ?? "."
        let report =
            bundle != nil
            ? RevisionValidator.validate(bundle: target, declaredType: bundleType, appSpecFileName: appSpecFileName)
            : RevisionValidator.validate(directory: target, appSpecFileName: appSpecFileName, ignoreHidden: ignoreHidden)
        print(ReportRendering.render(report, target: target, format: output), terminator: "")
        if !report.isValid { throw CLIFailure.problemsFound }
    }
}

enum ReportRendering {
    static func render(_ report: ValidationReport, target: String, format: ReportFormat) -> String {
        switch format {
        case .text:
            var out = report.findings.map { $0.description + "\n" }.joined()
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
                return .members(members)
            }
            let document = JSONValue.members([
                ("target", .string(target)), ("valid", .bool(report.isValid)),
                ("appspec", report.appSpecPath.map { .string($0) } ?? .null), ("errors", .int(report.errors.count)),
                ("warnings", .int(report.warnings.count)), ("findings", .array(findings)),
            ])
            return document.rendered() + "\n"
        }
    }
}

/// `deployctl push`: the aws CLI's `deploy push`, into the built-in artifact store.
struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
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
            result = try await RevisionPush.push(
                applicationName: applicationName, s3Location: s3Location, source: source, description: description, bundleType: bundleType,
                ignoreHidden: ignoreHidden, api: api, artifacts: global.openUploader())
        } catch let error as PushError {
            switch error {
            case .invalidS3Location: throw CLIFailure.usage(error.description)
            case .invalidRevision(let report):
                StandardStreams.err(ReportRendering.render(report, target: source, format: .text))
                throw CLIFailure.problemsFound
            default: throw CLIFailure.other(error.description)
            }
        } catch let error as ServiceError {
            throw CLIFailure.service(operation: "RegisterApplicationRevision", code: error.code, message: error.message)
        } catch let error as RemoteError {
            throw CLIFailure.other(error.description)
        }
        for warning in result.report.warnings {
            StandardStreams.err(warning.description + "\n")
        }
        let location = result.location
        var shorthand = "bucket=\(location.bucket ?? ""),key=\(location.key ?? ""),bundleType=\(location.bundleType?.rawValue ?? "zip")"
        shorthand += ",eTag=\(location.eTag ?? ""),version=\(location.version ?? "")"
        print(
            """
            To deploy with this revision, run:
            deployctl create-deployment --application-name \(result.applicationName) --s3-location \(shorthand) --deployment-group-name <deployment-group-name> --deployment-config-name <deployment-config-name> --description <description>
            """)
    }
}

/// `deployctl bundle …`: inspect, extract and create bundles with the same safety rules deployments use.
struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "List, extract or create revision bundles (deployctl extension).",
        subcommands: [List.self, Extract.self, Create.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a bundle's entries after checking that it is safe.")

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
                let summary = try BundleArchive.extract(
                    bundle, declaredType: bundleType, into: into, limits: BundleLimits(maxTotalBytes: maxBytes, maxEntries: maxEntries))
                print("extracted \(summary.entries) entries, \(summary.bytes) bytes into \(into)")
            } catch {
                throw CLIFailure.other(error.description)
            }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a bundle from a directory (what push uploads).")

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
                let summary = try BundleArchive.create(from: source, to: bundle, type: bundleType, ignoreHidden: ignoreHidden)
                print("wrote \(bundle): \(summary.entries) entries, \(summary.bytes) bytes")
            } catch {
                throw CLIFailure.other(error.description)
            }
        }
    }
}
