import Foundation

/// An access key pair (and session token) to sign requests with.
public struct AWSCredentials: Sendable, Equatable {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Where the pair came from, for messages ("environment", "~/.aws/credentials [ci]").
    public var source: String

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, source: String) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }
}

/// Why no credentials or settings could be found.
public struct CredentialsError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// The standard AWS credential and region chain, as the aws CLI and boto3 read it: `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, then the profile (`--profile`, else `AWS_PROFILE`, else
/// `default`) in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`) and the config
/// file (`AWS_CONFIG_FILE`, `~/.aws/config`, sections `[profile NAME]`).
public struct CredentialChain: Sendable {
    public var environment: [String: String]
    public var profile: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, profile: String? = nil) {
        self.environment = environment
        self.profile = profile
    }

    var profileName: String { profile ?? environment["AWS_PROFILE"] ?? environment["AWS_DEFAULT_PROFILE"] ?? "default" }

    var home: String { environment["HOME"] ?? NSHomeDirectory() }

    var credentialsFile: String { environment["AWS_SHARED_CREDENTIALS_FILE"] ?? home + "/.aws/credentials" }
    var configFile: String { environment["AWS_CONFIG_FILE"] ?? home + "/.aws/config" }

    public func credentials() throws -> AWSCredentials {
        // An explicit --profile wins over the environment's keys, as in the aws CLI.
        if profile == nil, let id = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"], !id.isEmpty, !secret.isEmpty
        {
            return AWSCredentials(
                accessKeyId: id, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
                source: "environment")
        }
        let name = profileName
        for (file, section) in [(credentialsFile, name), (configFile, name == "default" ? "default" : "profile \(name)")] {
            guard let values = Self.section(section, inFile: file) else { continue }
            if let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"], !id.isEmpty, !secret.isEmpty {
                return AWSCredentials(
                    accessKeyId: id, secretAccessKey: secret, sessionToken: values["aws_session_token"], source: "\(file) [\(section)]")
            }
        }
        if profile != nil || environment["AWS_PROFILE"] != nil,
            Self.section(name, inFile: credentialsFile) == nil, Self.section("profile \(name)", inFile: configFile) == nil
        {
            throw CredentialsError(description: "The config profile (\(name)) could not be found in \(credentialsFile) or \(configFile).")
        }
        throw CredentialsError(
            description:
                "Unable to locate credentials. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put a profile in \(credentialsFile) (a key comes from `deployctl create-access-key` on the server's host)."
        )
    }

    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1` (the server accepts any).
    public func region() -> String {
        if let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"], !region.isEmpty { return region }
        let name = profileName
        let section = name == "default" ? "default" : "profile \(name)"
        return Self.section(section, inFile: configFile)?["region"] ?? "us-east-1"
    }

    /// A setting of the profile in the config file (`ca_bundle`, `endpoint_url`).
    public func setting(_ key: String) -> String? {
        let name = profileName
        return Self.section(name == "default" ? "default" : "profile \(name)", inFile: configFile)?[key]
    }

    /// The `key = value` lines of `[name]` in an INI file (comments with `#` or `;`), or nil when the file or the
    /// section is missing.
    static func section(_ name: String, inFile path: String) -> [String: String]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var current: String?
        var found: [String: String]?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if current == name, found == nil { found = [:] }
                continue
            }
            guard current == name, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            found?[key] = value
        }
        return found
    }
}
