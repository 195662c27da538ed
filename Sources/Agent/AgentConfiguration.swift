import AppSpec
import Foundation
import Yams

/// Why an agent configuration file cannot be used.
public struct AgentConfigurationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// AWS's agent configuration (`/etc/codedeploy-agent/conf/codedeployagent.yml`, symbol keys), as deployctl's agent
/// reads it, so the same files drive either agent (ARCHITECTURE.md, "AWS's agent 1.8.1 on the wire").
public struct AgentConfiguration: Sendable, Equatable {
    public static let defaultPath = "/etc/codedeploy-agent/conf/codedeployagent.yml"
    public static let defaultOnPremisesPath = "/etc/codedeploy-agent/conf/codedeploy.onpremises.yml"

    /// `:deploy_control_endpoint:`, the command service's URL.
    public var deployControlEndpoint: String?
    /// `:s3_endpoint_override:`, where bundles are fetched (an IP-literal URL gives path-style requests).
    public var s3EndpointOverride: String?
    public var rootDirectory: String?
    public var logDirectory: String?
    public var onPremisesConfigFile: String
    public var waitBetweenRuns: Double?
    /// `:deployctl_ca_file:` (deployctl's own key; AWS's agent ignores it and trusts the system store instead).
    public var caFile: String?

    public init(
        deployControlEndpoint: String? = nil, s3EndpointOverride: String? = nil, rootDirectory: String? = nil, logDirectory: String? = nil,
        onPremisesConfigFile: String = AgentConfiguration.defaultOnPremisesPath, waitBetweenRuns: Double? = nil, caFile: String? = nil
    ) {
        self.deployControlEndpoint = deployControlEndpoint
        self.s3EndpointOverride = s3EndpointOverride
        self.rootDirectory = rootDirectory
        self.logDirectory = logDirectory
        self.onPremisesConfigFile = onPremisesConfigFile
        self.waitBetweenRuns = waitBetweenRuns
        self.caFile = caFile
    }

    public static func load(path: String) throws(AgentConfigurationError) -> AgentConfiguration {
        let values = try mapping(path)
        func text(_ key: String) -> String? {
            guard let value = values[":" + key] ?? values[key] else { return nil }
            let trimmed = value.trimmingCharacters(in: .whitespaces)
            return trimmed.isEmpty ? nil : trimmed
        }
        var configuration = AgentConfiguration(
            deployControlEndpoint: text("deploy_control_endpoint"), s3EndpointOverride: text("s3_endpoint_override"),
            rootDirectory: text("root_dir"), logDirectory: text("log_dir"),
            onPremisesConfigFile: text("on_premises_config_file") ?? defaultOnPremisesPath,
            waitBetweenRuns: text("wait_between_runs").flatMap(Double.init),
            caFile: text("deployctl_ca_file"))
        if let endpoint = configuration.deployControlEndpoint, !(endpoint.hasPrefix("https://") || endpoint.hasPrefix("http://")) {
            throw AgentConfigurationError("\(path): :deploy_control_endpoint: must be a URL (https://HOST:PORT), got '\(endpoint.prefix(100))'")
        }
        if let seconds = configuration.waitBetweenRuns, !(0...3600).contains(seconds) {
            configuration.waitBetweenRuns = nil
        }
        return configuration
    }

    /// A flat YAML mapping of scalars, keys as written (`:root_dir` keeps its colon).
    static func mapping(_ path: String) throws(AgentConfigurationError) -> [String: String] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AgentConfigurationError("cannot read \(path): \(error.localizedDescription)")
        }
        guard text.utf8.count <= 1 << 20 else { throw AgentConfigurationError("\(path) is larger than 1 MiB") }
        let node: Node?
        do {
            node = try YAMLNodes.compose(text)
        } catch {
            throw AgentConfigurationError("\(path) is not valid YAML: \(error)")
        }
        guard let node else { return [:] }
        guard let mapping = node.mapping else { throw AgentConfigurationError("\(path): expected a mapping of settings at the top level") }
        var values: [String: String] = [:]
        for (key, value) in mapping {
            guard let name = key.string else { continue }
            values[name] = value.scalar?.string ?? ""
        }
        return values
    }
}

/// The on-premises identity file (`codedeploy.onpremises.yml`): an IAM user (ARN and a key pair) or an IAM session
/// (ARN and a credentials file), and the region requests are signed for.
public struct OnPremisesConfiguration: Sendable, Equatable {
    public var hostIdentifier: String
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?
    public var region: String

    /// The instance name deployctl registered: the ARN's last path component (`…:user/deployctl/web-1` → `web-1`).
    public var instanceName: String {
        String(hostIdentifier.split(separator: "/").last ?? Substring(hostIdentifier))
    }

    public static func load(path: String) throws(AgentConfigurationError) -> OnPremisesConfiguration {
        let values = try AgentConfiguration.mapping(path)
        guard let region = values["region"], !region.isEmpty else { throw AgentConfigurationError("\(path): region is required") }
        if let arn = values["iam_user_arn"], !arn.isEmpty {
            guard values["iam_session_arn"] == nil else {
                throw AgentConfigurationError("\(path): give iam_user_arn or iam_session_arn, not both")
            }
            guard let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"], !id.isEmpty, !secret.isEmpty else {
                throw AgentConfigurationError("\(path): an iam_user_arn needs aws_access_key_id and aws_secret_access_key")
            }
            return OnPremisesConfiguration(hostIdentifier: arn, accessKeyId: id, secretAccessKey: secret, sessionToken: nil, region: region)
        }
        if let arn = values["iam_session_arn"], !arn.isEmpty, let file = values["aws_credentials_file"] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw AgentConfigurationError("\(path): cannot read aws_credentials_file \(file)")
            }
            var fields: [String: String] = [:]
            var inDefault = false
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("[") {
                    inDefault = trimmed == "[default]"
                    continue
                }
                guard inDefault, let equals = trimmed.firstIndex(of: "=") else { continue }
                fields[trimmed[..<equals].trimmingCharacters(in: .whitespaces)] = trimmed[trimmed.index(after: equals)...].trimmingCharacters(
                    in: .whitespaces)
            }
            guard let id = fields["aws_access_key_id"], let secret = fields["aws_secret_access_key"] else {
                throw AgentConfigurationError("\(file): the [default] profile needs aws_access_key_id and aws_secret_access_key")
            }
            return OnPremisesConfiguration(
                hostIdentifier: arn, accessKeyId: id, secretAccessKey: secret, sessionToken: fields["aws_session_token"], region: region)
        }
        throw AgentConfigurationError("\(path): needs iam_user_arn (with a key pair) or iam_session_arn (with aws_credentials_file)")
    }
}
