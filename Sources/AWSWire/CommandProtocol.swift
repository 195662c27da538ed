import DeployModel
import Foundation
import HostCommandModel

/// The agent ⇄ command service protocol of CodeDeploy (`CodeDeployCommandService_v20141006.*`, JSON 1.1, SigV4
/// service `codedeploy-commands`), as AWS's agent 1.8.1 speaks it (ARCHITECTURE.md, "AWS's agent 1.8.1 on the wire"): the
/// identifiers, the deployment specification's JSON and the diagnostics envelopes, shared by the server and
/// deployctl's remote agent.
public enum CommandProtocol {
    /// `:enable_auth_policy:` agents use the second prefix and the `-secure` service.
    public static let targetPrefixes = ["CodeDeployCommandService_v20141006.", "CodeDeployCommandService."]
    public static let signingServices: Set<String> = ["codedeploy-commands", "codedeploy-commands-secure"]
    public static let operations: Set<String> = [
        "PollHostCommand", "GetDeploymentSpecification", "PutHostCommandAcknowledgement", "PutHostCommandComplete", "PostHostCommandUpdate",
    ]

    /// The operation an `X-Amz-Target` names when it is a command-service target (nil for any other target).
    public static func operation(target: String) -> String? {
        for prefix in targetPrefixes where target.hasPrefix(prefix) { return String(target.dropFirst(prefix.count)) }
        return nil
    }

    // MARK: Identifiers

    /// What a HostCommandIdentifier carries: opaque to the agent, which echoes it back. Encoded like AWS's, as
    /// base64 of a JSON array `["deployctl.HostCommandIdentifier", {…}]`.
    public struct CommandIdentifier: Sendable, Equatable {
        public var commandId: String
        public var deploymentId: String
        public var instanceName: String

        public init(commandId: String, deploymentId: String, instanceName: String) {
            self.commandId = commandId
            self.deploymentId = deploymentId
            self.instanceName = instanceName
        }

        public var encoded: String {
            let body = JSONValue.array([
                .string("deployctl.HostCommandIdentifier"),
                .members([("commandId", .string(commandId)), ("deploymentId", .string(deploymentId)), ("instanceName", .string(instanceName))]),
            ]).compact()
            return Data(body.utf8).base64EncodedString()
        }

        public init?(decoding text: String) {
            guard text.utf8.count <= 4096, let data = Data(base64Encoded: text), let json = String(data: data, encoding: .utf8),
                let value = try? JSONValue.parse(json), case .array(let items) = value, items.count == 2,
                items[0] == .string("deployctl.HostCommandIdentifier"), let commandId = items[1]["commandId"]?.stringValue,
                let deploymentId = items[1]["deploymentId"]?.stringValue, let instanceName = items[1]["instanceName"]?.stringValue
            else { return nil }
            self.init(commandId: commandId, deploymentId: deploymentId, instanceName: instanceName)
        }
    }

    /// `deployctl/<region>/Prod/arn:aws:codedeploy:<region>:<account>:deployment/<id>`: the model's pattern
    /// (`^[^/]+/[^/]+/[^/]+/.+$`), at most 129 characters.
    public static func executionId(region: String, account: String, deploymentId: String) -> String {
        "deployctl/\(region.prefix(30))/Prod/arn:aws:codedeploy:\(region.prefix(30)):\(account):deployment/\(deploymentId)"
    }

    /// The deployment an execution id names.
    public static func deploymentId(fromExecutionId text: String) -> String? {
        guard text.count <= 129, let range = text.range(of: ":deployment/", options: .backwards) else { return nil }
        let id = String(text[range.upperBound...])
        return id.isEmpty || id.contains("/") ? nil : id
    }

    // MARK: The deployment specification (inside the PKCS7/JSON envelope)

    /// The spec's JSON, with the fields AWS's agent reads (and never `AllPossibleLifecycleEvents`, which breaks its
    /// Install). Bundles are S3 revisions; the ETag, when known, is checked by the agent against GetObject's.
    public static func specificationJSON(_ spec: DeploymentSpecification) -> String {
        var revision: [(String, JSONValue)] = []
        switch spec.bundle {
        case .s3(let bucket, let key, let version, let eTag, let bundleType):
            var s3: [(String, JSONValue)] = [("Bucket", .string(bucket)), ("Key", .string(key)), ("BundleType", .string(bundleType ?? "zip"))]
            if let version, !version.isEmpty { s3.append(("Version", .string(version))) }
            if let eTag, !eTag.isEmpty { s3.append(("ETag", .string(eTag))) }
            revision = [("RevisionType", .string("S3")), ("S3Revision", .members(s3))]
        case .unsupported(let reason):
            revision = [("RevisionType", .string("Unsupported")), ("Reason", .string(reason))]
        }
        var members: [(String, JSONValue)] = [
            ("DeploymentId", .string(spec.deploymentId)), ("DeploymentGroupId", .string(spec.deploymentGroupId)),
            ("DeploymentGroupName", .string(spec.deploymentGroupName)), ("ApplicationName", .string(spec.applicationName)),
            ("DeploymentCreator", .string(spec.creator)), ("DeploymentType", .string("IN_PLACE")),
        ]
        if let behavior = spec.fileExistsBehavior {
            members.append(("AgentActionOverrides", .members([("AgentOverrides", .members([("FileExistsBehavior", .string(behavior))]))])))
        }
        members.append(("Revision", .members(revision)))
        if spec.ignoreApplicationStopFailures {
            // deployctl's own agent reads it; AWS's ignores unknown members.
            members.append(("IgnoreApplicationStopFailures", .bool(true)))
        }
        return JSONValue.members(members).compact()
    }

    /// Reads a spec's JSON (deployctl's agent); nil when required fields are missing.
    public static func parseSpecification(_ text: String) -> DeploymentSpecification? {
        guard let value = try? JSONValue.parse(text), let deploymentId = value["DeploymentId"]?.stringValue,
            let groupId = value["DeploymentGroupId"]?.stringValue, let groupName = value["DeploymentGroupName"]?.stringValue,
            let application = value["ApplicationName"]?.stringValue, let revision = value["Revision"]
        else { return nil }
        var deploymentIdText = deploymentId
        if deploymentIdText.hasPrefix("arn:"), let slash = deploymentIdText.lastIndex(of: "/") {
            deploymentIdText = String(deploymentIdText[deploymentIdText.index(after: slash)...])
        }
        let bundle: BundleLocation
        if revision["RevisionType"]?.stringValue == "S3", let s3 = revision["S3Revision"], let bucket = s3["Bucket"]?.stringValue,
            let key = s3["Key"]?.stringValue
        {
            bundle = .s3(
                bucket: bucket, key: key, version: s3["Version"]?.stringValue, eTag: s3["ETag"]?.stringValue,
                bundleType: s3["BundleType"]?.stringValue)
        } else {
            bundle = .unsupported(
                revision["Reason"]?.stringValue ?? "\(revision["RevisionType"]?.stringValue ?? "This") revisions cannot be fetched by deployctl.")
        }
        var ignoreStopFailures = false
        if case .bool(let flag)? = value["IgnoreApplicationStopFailures"] { ignoreStopFailures = flag }
        return DeploymentSpecification(
            deploymentId: deploymentIdText, applicationName: application, deploymentGroupName: groupName, deploymentGroupId: groupId,
            creator: value["DeploymentCreator"]?.stringValue ?? "user", bundle: bundle,
            fileExistsBehavior: value["AgentActionOverrides"]?["AgentOverrides"]?["FileExistsBehavior"]?.stringValue,
            ignoreApplicationStopFailures: ignoreStopFailures)
    }

    // MARK: Diagnostics

    /// The agent's error codes in a Complete's diagnostics, and the API's LifecycleErrorCode each becomes.
    public static func lifecycleErrorCode(agentCode: Int) -> String {
        switch agentCode {
        case 0: return "Success"
        case 1: return "ScriptMissing"
        case 2: return "ScriptNotExecutable"
        case 3: return "ScriptTimedOut"
        case 4: return "ScriptFailed"
        case 6: return "OutputsLeftOpen"
        default: return "UnknownError"
        }
    }

    /// The reverse, for deployctl's agent reporting in AWS's terms.
    public static func agentCode(lifecycleErrorCode: String?) -> Int {
        switch lifecycleErrorCode {
        case nil, "Success"?: return 0
        case "ScriptMissing"?: return 1
        case "ScriptNotExecutable"?: return 2
        case "ScriptTimedOut"?: return 3
        case "ScriptFailed"?: return 4
        case "OutputsLeftOpen"?: return 6
        default: return 5
        }
    }

    /// A Complete's `Diagnostics` envelope → the report the control plane records. A payload that is not JSON is
    /// kept as the message (the server must not fail on it).
    public static func report(status: String, diagnostics: JSONValue?) -> HostCommandReport {
        let commandStatus: HostCommandStatus = status == "Succeeded" ? .succeeded : .failed
        let payload = diagnostics?["Payload"]?.stringValue ?? ""
        guard let fields = try? JSONValue.parse(String(payload.prefix(16_384))), case .object = fields else {
            return HostCommandReport(
                status: commandStatus, errorCode: commandStatus == .succeeded ? "Success" : "UnknownError",
                message: payload.isEmpty ? nil : String(payload.prefix(2048)))
        }
        var code = commandStatus == .succeeded ? 0 : 5
        if case .int(let number)? = fields["error_code"] { code = number }
        let script = fields["script_name"]?.stringValue
        let log = fields["log"]?.stringValue
        return HostCommandReport(
            status: commandStatus, errorCode: commandStatus == .succeeded ? "Success" : lifecycleErrorCode(agentCode: code == 0 ? 5 : code),
            scriptName: script?.isEmpty == false ? script : nil, message: fields["message"]?.stringValue.map { String($0.prefix(2048)) },
            logTail: log?.isEmpty == false ? String(log?.suffix(2048) ?? "") : nil)
    }

    /// A report as a Complete's `Diagnostics` (deployctl's agent).
    public static func diagnostics(_ report: HostCommandReport) -> JSONValue {
        let payload = JSONValue.members([
            ("error_code", .int(agentCode(lifecycleErrorCode: report.status == .failed ? (report.errorCode ?? "UnknownError") : "Success"))),
            ("script_name", .string(report.scriptName ?? "")), ("message", .string(report.message ?? "")), ("log", .string(report.logTail ?? "")),
        ]).compact()
        return .members([("Format", .string("JSON")), ("Payload", .string(payload))])
    }
}
