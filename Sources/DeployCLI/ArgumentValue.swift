import ArgumentParser
import DeployModel
import Foundation
import Yams

/// Turns the text of structured flags into request JSON, as the aws CLI reads them:
/// JSON, shorthand, or `file://PATH` holding either.
enum ArgumentValue {
    /// A value as given, or the contents of the file a `file://PATH` or `fileb://PATH` value names (the aws CLI
    /// reads either for any parameter; CodeDeploy's members are text, so both must be UTF-8).
    static func contents(_ text: String, flag: String) throws -> String {
        let scheme = text.hasPrefix("file://") ? "file://" : text.hasPrefix("fileb://") ? "fileb://" : nil
        guard let scheme else { return text }
        let path = String(text.dropFirst(scheme.count))
        do {
            return try ParameterFile.read(path)
        } catch {
            throw CLIFailure.usage("Error parsing parameter '\(flag)': cannot read \(path): \(error.reason)")
        }
    }

    static func json(_ text: String, flag: String) throws -> JSONValue {
        do {
            return try JSONValue.parse(text)
        } catch {
            throw CLIFailure.usage("Error parsing parameter '\(flag)': \(error.description)")
        }
    }

    /// YAML (for `--cli-input-yaml`) as the JSON value it stands for: mappings keep their order; plain scalars are
    /// resolved by YAML 1.1's core tags as PyYAML does (null, booleans, integers, floats, else strings).
    static func yaml(_ text: String, flag: String) throws -> JSONValue {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw CLIFailure.usage("Error parsing parameter '\(flag)': \(error)")
        }
        guard let node else { return .object([]) }
        return try yamlValue(node, flag: flag, depth: 0)
    }

    static func yamlValue(_ node: Node, flag: String, depth: Int) throws -> JSONValue {
        guard depth < 100 else { throw CLIFailure.usage("Error parsing parameter '\(flag)': nested deeper than 100 levels") }
        switch node {
        case .scalar(let scalar):
            if scalar.style != .plain { return .string(scalar.string) }
            switch node.tag.description {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map { .bool($0) } ?? .string(scalar.string)
            case Tag.Name.int.rawValue: return node.int.map { .int($0) } ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map { .double($0) } ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            return .array(try sequence.map { try yamlValue($0, flag: flag, depth: depth + 1) })
        case .mapping(let mapping):
            var members: [(String, JSONValue)] = []
            for (key, value) in mapping {
                guard let name = key.string else { throw CLIFailure.usage("Error parsing parameter '\(flag)': a key that is not text") }
                members.append((name, try yamlValue(value, flag: flag, depth: depth + 1)))
            }
            return .members(members)
        case .alias:
            throw CLIFailure.usage("Error parsing parameter '\(flag)': YAML aliases are not accepted")
        }
    }

    static func shorthand(_ text: String, flag: String) throws -> JSONValue {
        do {
            return try ShorthandParser.parseStructure(text)
        } catch let error as ShorthandSyntaxError {
            throw CLIFailure.usage("Error parsing parameter '\(flag)': \(error.description)")
        }
    }

    /// A structure or map flag: `{"a": 1}`, `a=1,b=2`, or `file://x.json`.
    static func structure(_ text: String, flag: String) throws -> JSONValue {
        let body = try contents(text, flag: flag).trimmingCharacters(in: .whitespacesAndNewlines)
        if body.hasPrefix("{") || body.hasPrefix("[") { return try json(body, flag: flag) }
        return try shorthand(body, flag: flag)
    }

    /// A list of structures: one JSON list, or one shorthand structure (or JSON object) per word.
    static func structureList(_ values: [String], flag: String) throws -> JSONValue {
        if values.count == 1 {
            let body = try contents(values[0], flag: flag).trimmingCharacters(in: .whitespacesAndNewlines)
            if body.hasPrefix("[") { return try json(body, flag: flag) }
            return .array([try structure(body, flag: flag)])
        }
        return .array(try values.map { try structure($0, flag: flag) })
    }

    /// A list of scalars: words, or one JSON list.
    static func scalarList(_ values: [String], flag: String) throws -> JSONValue {
        if values.count == 1 {
            let body = try contents(values[0], flag: flag).trimmingCharacters(in: .whitespacesAndNewlines)
            if body.hasPrefix("[") { return try json(body, flag: flag) }
            return .array([.string(body)])
        }
        return .array(values.map { .string($0) })
    }

    /// `--s3-location` / `--github-location`, the aws CLI's shortcuts for `--revision`.
    static func revisionShortcut(s3Location: String?, githubLocation: String?) throws -> JSONValue? {
        if s3Location != nil, githubLocation != nil {
            throw CLIFailure.usage("Give only one of --s3-location and --github-location.")
        }
        if let s3Location, s3Location.hasPrefix("s3://") {
            // The form `push` and `aws s3` print: the bundle type comes from the key's extension.
            let rest = s3Location.dropFirst("s3://".count)
            guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex, rest.index(after: slash) != rest.endIndex else {
                throw CLIFailure.usage("--s3-location \(s3Location.prefix(200)) must be s3://BUCKET/KEY")
            }
            let key = String(rest[rest.index(after: slash)...])
            let lower = key.lowercased()
            let type =
                lower.hasSuffix(".zip")
                ? "zip" : lower.hasSuffix(".tar") ? "tar" : lower.hasSuffix(".tgz") || lower.hasSuffix(".tar.gz") ? "tgz" : nil
            guard let type else {
                throw CLIFailure.usage(
                    "--s3-location \(s3Location.prefix(200)): the key does not end in .zip, .tar, .tgz or .tar.gz; use bucket=…,key=…,bundleType=… to say the type"
                )
            }
            let parsed = JSONValue.members([("bucket", .string(String(rest[..<slash]))), ("key", .string(key)), ("bundleType", .string(type))])
            return .members([("revisionType", .string("S3")), ("s3Location", parsed)])
        }
        if let s3Location {
            let parsed = try structure(s3Location, flag: "--s3-location")
            guard parsed["bucket"] != nil, parsed["key"] != nil, parsed["bundleType"] != nil else {
                throw CLIFailure.usage("--s3-location must specify bucket, key and bundleType.")
            }
            return .members([("revisionType", .string("S3")), ("s3Location", parsed)])
        }
        if let githubLocation {
            let parsed = try structure(githubLocation, flag: "--github-location")
            guard parsed["repository"] != nil, parsed["commitId"] != nil else {
                throw CLIFailure.usage("--github-location must specify repository and commitId.")
            }
            return .members([("revisionType", .string("GitHub")), ("gitHubLocation", parsed)])
        }
        return nil
    }
}

/// Range checks for numeric flags, with a message that names the flag and what it allows.
enum NumberRange {
    /// `--timeout` of a waiter: a second to a year.
    static let waitSeconds: ClosedRange<Double> = 1...31_536_000

    static func check(_ flag: String, _ value: Double, _ range: ClosedRange<Double>) throws {
        guard value.isFinite, range.contains(value) else {
            throw ValidationError(
                "\(flag) must be a number of seconds from \(format(range.lowerBound)) to \(format(range.upperBound)), got \(value).")
        }
    }

    static func check(_ flag: String, _ value: Int, _ range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ValidationError("\(flag) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \(value).")
        }
    }

    static func format(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
}

/// `--hook-env` names: environment variable names, nothing else.
enum HookEnvironmentNames {
    static func check(_ names: [String]) throws {
        for name in names {
            let valid =
                !name.isEmpty && name.count <= 256
                && name.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0)) }
                && !("0"..."9").contains(name.unicodeScalars.first ?? "0")
            guard valid else { throw ValidationError("--hook-env takes a variable name (letters, digits, '_'), got '\(name.prefix(64))'.") }
        }
    }
}

/// A `file://` parameter's content: at most `maxBytes`, UTF-8, and a reason in plain words when it cannot be read
/// (a directory, a device that never ends, a missing file, no permission).
enum ParameterFile {
    struct Failure: Error {
        var reason: String
    }

    static let maxBytes = 10 << 20

    static func read(_ path: String, maxBytes: Int = ParameterFile.maxBytes) throws(Failure) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw Failure(reason: String(cString: strerror(errno)).lowercased()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure(reason: String(cString: strerror(errno)).lowercased()) }
        if info.st_mode & S_IFMT == S_IFDIR { throw Failure(reason: "it is a directory, not a file") }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n < 0 { throw Failure(reason: String(cString: strerror(errno)).lowercased()) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            if bytes.count > maxBytes { throw Failure(reason: "it is larger than \(maxBytes) bytes (the limit for a parameter file)") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Failure(reason: "it is not UTF-8 text")
        }
        return text
    }
}
