import AWSWire
import DeployModel
import Foundation

/// The CodeDeploy API of a remote server (`--endpoint-url`), over AWS JSON 1.1 with SigV4: every operation comes
/// from the generated ``CodeDeployTransport`` extension, so local and remote answers have the same shapes and print
/// byte for byte the same.
public struct RemoteCodeDeploy: CodeDeployTransport {
    let client: SignedClient

    public init(client: SignedClient) {
        self.client = client
    }

    public func call(_ operation: String, _ request: JSONValue) async throws -> JSONValue {
        let body = Data(request.compact().utf8)
        let answer = try await client.send(
            method: "POST", path: "/",
            headers: [("Content-Type", JSONProtocol.contentType), ("X-Amz-Target", JSONProtocol.targetPrefix + operation)], body: body,
            service: "codedeploy")
        let text = String(decoding: answer.body, as: UTF8.self)
        guard (200..<300).contains(answer.status) else {
            throw Self.serviceError(status: answer.status, text: text)
        }
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return .object([]) }
        do {
            return try JSONValue.parse(text)
        } catch {
            throw RemoteError("The server answered \(operation) with a body that is not JSON: \(text.prefix(200))")
        }
    }

    /// One of deployctl's own operations (``AgentDirectory``), sent and signed like CodeDeploy's.
    func callDeployctl(_ operation: String, _ request: JSONValue) async throws -> JSONValue {
        let answer = try await client.send(
            method: "POST", path: "/",
            headers: [("Content-Type", JSONProtocol.contentType), ("X-Amz-Target", "Deployctl_20261130." + operation)],
            body: Data(request.compact().utf8), service: "codedeploy")
        let text = String(decoding: answer.body, as: UTF8.self)
        guard (200..<300).contains(answer.status) else { throw Self.serviceError(status: answer.status, text: text) }
        do {
            return try JSONValue.parse(text)
        } catch {
            throw RemoteError("The server answered \(operation) with a body that is not JSON: \(text.prefix(200))")
        }
    }

    /// botocore's reading of a JSON 1.1 error: `__type` (cut at `:`, after the last `#`) and `message`.
    static func serviceError(status: Int, text: String) -> any Error {
        guard let value = try? JSONValue.parse(text), var code = value["__type"]?.stringValue else {
            if status >= 500 || text.isEmpty {
                return RemoteError("The server answered HTTP \(status)\(text.isEmpty ? "" : ": \(text.prefix(200))")")
            }
            return ServiceError(String(status), String(text.prefix(500)))
        }
        if let colon = code.firstIndex(of: ":") { code = String(code[..<colon]) }
        if let hash = code.lastIndex(of: "#") { code = String(code[code.index(after: hash)...]) }
        return ServiceError(code, value["message"]?.stringValue ?? value["Message"]?.stringValue ?? "")
    }
}

extension RemoteCodeDeploy: AgentDirectory {
    public func listAgents(instanceNames: [String]?) async throws -> [AgentPresence] {
        let request: JSONValue = instanceNames.map { .members([("instanceNames", .array($0.map { .string($0) }))]) } ?? .object([])
        return try JSONValueDecoder().decode(ListAgentsOutput.self, from: try await callDeployctl("ListAgents", request)).agents
    }
}

/// What `deployctl register` needs back from the server that registered an instance: the instance's own key and
/// what its agent's configuration names.
public struct RemoteRegistration: Sendable, Equatable {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var iamUserArn: String
    public var region: String

    public init(accessKeyId: String, secretAccessKey: String, iamUserArn: String, region: String) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.iamUserArn = iamUserArn
        self.region = region
    }

    /// The steps a registration's error may name, as the server puts them before its message (`Step: message`).
    public static let steps = [
        "RegisterOnPremisesInstance", "AddTagsToOnPremisesInstances", "CreateAccessKey", "DeregisterOnPremisesInstance", "DeleteAccessKey",
    ]

    /// The step a server's error message names, and the message without it.
    public static func step(of message: String, default fallback: String) -> (String, String) {
        for step in steps where message.hasPrefix(step + ": ") { return (step, String(message.dropFirst(step.count + 2))) }
        return (fallback, message)
    }
}

/// `deployctl register`/`deregister` from an operator's machine: deployctl's own operations, for admin keys.
extension RemoteCodeDeploy {
    public func registerInstance(instanceName: String, tags: [Tag]) async throws -> RemoteRegistration {
        let request = JSONValue.members([
            ("instanceName", .string(instanceName)),
            ("tags", .array(tags.map { .members([("Key", .string($0.key ?? "")), ("Value", .string($0.value ?? ""))]) })),
        ])
        let answer = try await callDeployctl("RegisterInstance", request)
        guard let id = answer["AccessKeyId"]?.stringValue, let secret = answer["SecretAccessKey"]?.stringValue,
            let arn = answer["IamUserArn"]?.stringValue
        else { throw RemoteError("The server's answer to RegisterInstance lacks the instance's key.") }
        return RemoteRegistration(accessKeyId: id, secretAccessKey: secret, iamUserArn: arn, region: answer["Region"]?.stringValue ?? "local")
    }

    public func deregisterInstance(instanceName: String) async throws {
        _ = try await callDeployctl("DeregisterInstance", .members([("instanceName", .string(instanceName))]))
    }
}

extension RemoteCodeDeploy: EventStreamSource {
    /// deployctl's `ListEvents`: a long poll when `query.wait` is set.
    public func listEvents(_ query: StreamEventQuery) async throws -> [StreamEvent] {
        var members: [(String, JSONValue)] = [("after", .int(Int(query.after))), ("limit", .int(query.limit))]
        if let id = query.deploymentId { members.append(("deploymentId", .string(id))) }
        if let name = query.applicationName { members.append(("applicationName", .string(name))) }
        if let since = query.since { members.append(("since", .double(since.timeIntervalSince1970))) }
        if query.wait > 0 { members.append(("waitSeconds", .double(query.wait))) }
        let answer = try await callDeployctl("ListEvents", .members(members))
        return (answer["events"]?.arrayValue ?? []).compactMap { item in
            guard case .int(let sequence)? = item["sequence"], let event = item["event"] else { return nil }
            return StreamEvent(sequence: Int64(sequence), event: event)
        }
    }
}

extension RemoteCodeDeploy: AlarmRegistry {
    public func putAlarm(name: String, definition: AlarmDefinition) async throws {
        var members: [(String, JSONValue)] = [("AlarmName", .string(name))]
        if case .object(let fields) = try JSONValueEncoder().encode(definition) { members += fields.map { ($0.key, $0.value) } }
        _ = try await callDeployctl("PutAlarm", .members(members))
    }

    public func describeAlarms(names: [String]?) async throws -> [AlarmDescription] {
        let request: JSONValue = names.map { .members([("AlarmNames", .array($0.map { .string($0) }))]) } ?? .object([])
        return try JSONValueDecoder().decode(DescribeAlarmsOutput.self, from: try await callDeployctl("DescribeAlarms", request)).alarms
    }

    public func deleteAlarms(names: [String]) async throws {
        _ = try await callDeployctl("DeleteAlarms", .members([("AlarmNames", .array(names.map { .string($0) }))]))
    }

    public func setAlarmState(name: String, state: String, reason: String) async throws -> [String] {
        let answer = try await callDeployctl(
            "SetAlarmState", .members([("AlarmName", .string(name)), ("StateValue", .string(state)), ("StateReason", .string(reason))]))
        return (answer["StoppedDeployments"]?.arrayValue ?? []).compactMap(\.stringValue)
    }
}

extension RemoteCodeDeploy: TopicRegistry {
    public func createTopic(name: String) async throws -> String {
        try await callDeployctl("CreateTopic", .members([("Name", .string(name))]))["TopicArn"]?.stringValue ?? ""
    }

    public func deleteTopic(arn: String) async throws {
        _ = try await callDeployctl("DeleteTopic", .members([("TopicArn", .string(arn))]))
    }

    public func listTopics() async throws -> [String] {
        (try await callDeployctl("ListTopics", .object([]))["Topics"]?.arrayValue ?? []).compactMap { $0["TopicArn"]?.stringValue }
    }

    public func subscribe(topicArn: String, protocolName: String, endpoint: String, signingSecret: String?, owner: String) async throws
        -> SubscribeResult
    {
        var members: [(String, JSONValue)] = [("TopicArn", .string(topicArn)), ("Protocol", .string(protocolName)), ("Endpoint", .string(endpoint))]
        if let signingSecret { members.append(("SigningSecret", .string(signingSecret))) }
        return try JSONValueDecoder().decode(SubscribeResult.self, from: try await callDeployctl("Subscribe", .members(members)))
    }

    public func confirmSubscription(topicArn: String, token: String) async throws -> String {
        try await callDeployctl("ConfirmSubscription", .members([("TopicArn", .string(topicArn)), ("Token", .string(token))]))["SubscriptionArn"]?
            .stringValue ?? ""
    }

    public func unsubscribe(subscriptionArn: String) async throws {
        _ = try await callDeployctl("Unsubscribe", .members([("SubscriptionArn", .string(subscriptionArn))]))
    }

    public func listSubscriptionsByTopic(topicArn: String) async throws -> [SubscriptionSummary] {
        let answer = try await callDeployctl("ListSubscriptionsByTopic", .members([("TopicArn", .string(topicArn))]))
        return try JSONValueDecoder().decode([SubscriptionSummary].self, from: answer["Subscriptions"] ?? .array([]))
    }

    public func publish(topicArn: String, message: String, subject: String?) async throws -> String {
        var members: [(String, JSONValue)] = [("TopicArn", .string(topicArn)), ("Message", .string(message))]
        if let subject { members.append(("Subject", .string(subject))) }
        return try await callDeployctl("Publish", .members(members))["MessageId"]?.stringValue ?? ""
    }

    public func listDeliveries(_ query: DeliveryQuery) async throws -> ListDeliveriesOutput {
        try JSONValueDecoder().decode(
            ListDeliveriesOutput.self, from: try await callDeployctl("ListDeliveries", try JSONValueEncoder().encode(query)))
    }
}
