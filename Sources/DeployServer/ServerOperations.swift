import AWSWire
import ControlPlane
import DeployModel
import Foundation

/// An operation the API listener serves, found from the request's `X-Amz-Target` once per request: one of
/// CodeDeploy's (the generated table) or one of deployctl's own (`Deployctl_20261130.<name>`, signed like them).
/// Its name labels the access log and the metrics, and is what an access role allows.
enum ServerOperation: Sendable {
    case codeDeploy(CodeDeployOperation)
    case deployctl(DeployctlOperation)

    var name: String {
        switch self {
        case .codeDeploy(let operation): return operation.name
        case .deployctl(let operation): return operation.name
        }
    }

    static func lookup(target: String) -> ServerOperation? {
        if target.hasPrefix(DeployctlOperation.targetPrefix) {
            return DeployctlOperation.all[String(target.dropFirst(DeployctlOperation.targetPrefix.count))].map { .deployctl($0) }
        }
        return JSONProtocol.operation(target: target).map { .codeDeploy($0) }
    }

    /// The refusal of a target that names no operation (cleaned, at most 100 characters of it).
    static func unknownMessage(target: String) -> String {
        if target.hasPrefix(DeployctlOperation.targetPrefix) {
            let requested = String(target.dropFirst(DeployctlOperation.targetPrefix.count))
            return
                "Unknown operation \(DeployctlOperation.targetPrefix)\(LogText.clean(requested, limit: 100)) (deployctl serves \(DeployctlOperation.all.keys.sorted().joined(separator: ", ")))."
        }
        return "Unknown operation \(LogText.clean(target, limit: 100)) (expected \(JSONProtocol.targetPrefix)<Operation>)."
    }
}

/// One of deployctl's own operations beside CodeDeploy's: the agents' presence (any reading key), and registering
/// or deregistering an instance with its key from an operator's machine (admin keys: `deployctl register
/// --endpoint-url`). Each decodes its JSON input, does its store work on the responder's executors, and answers JSON.
struct DeployctlOperation: Sendable {
    static let targetPrefix = "Deployctl_20261130."

    let name: String
    let run: @Sendable (ServerResponder, JSONValue) async throws(OperationRefusal) -> JSONValue

    /// A refusal of the request, as the JSON protocol sends it.
    struct OperationRefusal: Error {
        var code: String
        var message: String
        var status = 400
    }

    static let all: [String: DeployctlOperation] = Dictionary(
        uniqueKeysWithValues: ([listAgents, listEvents, registerInstance, deregisterInstance, putAlarm, describeAlarms, deleteAlarms, setAlarmState]
            + topicOperations).map { ($0.name, $0) })

    /// Parses the body, runs the operation, and turns every failure into the error the JSON protocol sends.
    func handle(_ responder: ServerResponder, body: Data) async -> JSONProtocol.Response {
        let input: JSONValue
        do {
            input = body.isEmpty ? .object([]) : try JSONValue.parse(String(decoding: body, as: UTF8.self))
        } catch {
            return .error("SerializationException", "Malformed request body: \(error)")
        }
        do throws(OperationRefusal) {
            let value = try await run(responder, input)
            return JSONProtocol.Response(status: 200, body: value.compact(), errorCode: nil)
        } catch {
            return .error(error.code, error.message, status: error.status)
        }
    }

    /// Runs store work, mapping what it throws: a refused registration step leads the message (deployctl register
    /// names it in its error line), a full executor is throttling, anything else a fault of ours.
    static func storeWork<T>(_ body: () async throws -> T) async throws(OperationRefusal) -> T {
        do {
            return try await body()
        } catch let failure as RegistrationFailure {
            throw OperationRefusal(code: failure.error.code, message: "\(failure.operation): \(failure.error.message)")
        } catch let error as ServiceError {
            throw OperationRefusal(code: error.code, message: error.message, status: error.code == "NotFound" ? 404 : 400)
        } catch let refusal as BlockingExecutor.Refusal {
            throw OperationRefusal(code: "ThrottlingException", message: refusal.description, status: 503)
        } catch let error as ServiceUnavailable {
            throw OperationRefusal(code: "ServiceUnavailable", message: error.message, status: 503)
        } catch {
            throw OperationRefusal(code: "InternalFailure", message: "\(error)", status: 500)
        }
    }

    static func instanceName(_ input: JSONValue) throws(OperationRefusal) -> String {
        guard let instance = input["instanceName"]?.stringValue else {
            throw OperationRefusal(code: "InstanceNameRequiredException", message: "An on-premises instance name must be specified.")
        }
        return instance
    }

    static let listAgents = DeployctlOperation(name: "ListAgents") { responder, input throws(OperationRefusal) in
        var names: [String]?
        if let given = input["instanceNames"] {
            guard let list = given.arrayValue?.compactMap(\.stringValue), list.count == given.arrayValue?.count else {
                throw OperationRefusal(code: "InvalidInstanceNameException", message: "instanceNames must be a list of instance names.")
            }
            names = list
        }
        let pending = responder.agentContacts.unwritten
        let asked = names
        return try await storeWork {
            let agents = try await responder.onReaders { plane in try plane.agentPresence(instanceNames: asked, pending: pending) }
            return try JSONValueEncoder().encode(ListAgentsOutput(agents: agents))
        }
    }

    /// The event stream after a sequence number (`after`), of a deployment or an application, from a time on
    /// (`since`, epoch seconds); with `waitSeconds`, held until an event is there (a long poll, at most 20 s).
    static let listEvents = DeployctlOperation(name: "ListEvents") { responder, input throws(OperationRefusal) in
        let query = try eventQuery(input)
        let deadline = ContinuousClock.now + .milliseconds(Int(query.wait * 1000))
        while true {
            let found = try await storeWork { try await responder.onReaders { plane in try plane.events(query) } }
            if !found.isEmpty || ContinuousClock.now >= deadline || Task.isCancelled {
                return .members([("events", .array(found.map(\.json)))])
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// The query of ListEvents (and of `GET /events`), with every member checked.
    static func eventQuery(_ input: JSONValue) throws(OperationRefusal) -> StreamEventQuery {
        func number(_ name: String, _ range: ClosedRange<Double>) throws(OperationRefusal) -> Double? {
            guard let value = input[name], value != .null else { return nil }
            let number: Double?
            switch value {
            case .int(let n): number = Double(n)
            case .double(let d): number = d
            case .string(let text): number = Double(text)
            default: number = nil
            }
            guard let number, range.contains(number) else {
                throw OperationRefusal(
                    code: "ValidationException", message: "\(name) must be a number from \(Int(range.lowerBound)) to \(Int(range.upperBound)).")
            }
            return number
        }
        func text(_ name: String) throws(OperationRefusal) -> String? {
            guard let value = input[name], value != .null else { return nil }
            guard let string = value.stringValue, !string.isEmpty, string.count <= 200 else {
                throw OperationRefusal(code: "ValidationException", message: "\(name) must be a string of 1 to 200 characters.")
            }
            return string
        }
        return StreamEventQuery(
            after: Int64(try number("after", 0...9e15) ?? 0), deploymentId: try text("deploymentId"),
            applicationName: try text("applicationName"), since: try number("since", 0...1e11).map { Date(timeIntervalSince1970: $0) },
            limit: Int(try number("limit", 1...Double(StreamEventQuery.maxLimit)) ?? Double(StreamEventQuery.maxLimit)),
            wait: try number("waitSeconds", 0...StreamEventQuery.maxWait) ?? 0)
    }

    static func alarmName(_ input: JSONValue) throws(OperationRefusal) -> String {
        guard let name = input["AlarmName"]?.stringValue else {
            throw OperationRefusal(code: "InvalidParameterValue", message: "AlarmName must be given.")
        }
        return name
    }

    static func alarmNames(_ input: JSONValue) throws(OperationRefusal) -> [String]? {
        guard let given = input["AlarmNames"] else { return nil }
        guard let list = given.arrayValue?.compactMap(\.stringValue), list.count == given.arrayValue?.count, list.count <= 100 else {
            throw OperationRefusal(code: "InvalidParameterValue", message: "AlarmNames must be a list of at most 100 alarm names.")
        }
        return list
    }

    /// deployctl's alarms (`put-alarm`, `describe-alarms`, `delete-alarms`, `set-alarm-state`), with CloudWatch's
    /// member names; SetAlarmState answers the deployments it stopped, and wakes their agents' held polls.
    static let putAlarm = DeployctlOperation(name: "PutAlarm") { responder, input throws(OperationRefusal) in
        let name = try alarmName(input)
        guard case .object(let given) = input else { throw OperationRefusal(code: "InvalidParameterValue", message: "PutAlarm takes an object.") }
        var members = given.filter { $0.key != "AlarmName" }
        if !members.contains(where: { $0.key == "Kind" }) { members.append(JSONMember("Kind", .string("manual"))) }
        let definition: AlarmDefinition
        do {
            definition = try JSONValueDecoder().decode(AlarmDefinition.self, from: .object(members))
        } catch {
            throw OperationRefusal(
                code: "InvalidParameterValue", message: "PutAlarm takes Kind (manual, prometheus or http) and that kind's members: \(error)")
        }
        try await storeWork { try await responder.onWriter { plane in try plane.putAlarmNow(name: name, definition: definition) } }
        return .object([])
    }

    static let describeAlarms = DeployctlOperation(name: "DescribeAlarms") { responder, input throws(OperationRefusal) in
        let names = try alarmNames(input)
        return try await storeWork {
            let alarms = try await responder.onReaders { plane in try plane.describeAlarmsNow(names: names) }
            return try JSONValueEncoder().encode(DescribeAlarmsOutput(alarms: alarms))
        }
    }

    static let deleteAlarms = DeployctlOperation(name: "DeleteAlarms") { responder, input throws(OperationRefusal) in
        let names = try alarmNames(input) ?? []
        try await storeWork { try await responder.onWriter { plane in try plane.deleteAlarmsNow(names: names) } }
        return .object([])
    }

    static let setAlarmState = DeployctlOperation(name: "SetAlarmState") { responder, input throws(OperationRefusal) in
        let name = try alarmName(input)
        guard let state = input["StateValue"]?.stringValue else {
            throw OperationRefusal(code: "InvalidParameterValue", message: "StateValue must be OK, ALARM or INSUFFICIENT_DATA.")
        }
        let reason = input["StateReason"]?.stringValue ?? ""
        let stopped = try await storeWork {
            try await responder.onWriter { plane in try plane.setAlarmStateNow(name: name, state: state, reason: reason) }
        }
        if !stopped.isEmpty { responder.waiters.wakeAll() }
        return .members([("StoppedDeployments", .array(stopped.map { .string($0) }))])
    }

    static let registerInstance = DeployctlOperation(name: "RegisterInstance") { responder, input throws(OperationRefusal) in
        let instance = try instanceName(input)
        var tags: [Tag] = []
        for item in input["tags"]?.arrayValue ?? [] {
            guard let key = item["Key"]?.stringValue else { throw OperationRefusal(code: "InvalidTagException", message: "Each tag needs a Key.") }
            tags.append(Tag(key: key, value: item["Value"]?.stringValue))
        }
        let given = tags
        let key = try await storeWork {
            try await responder.onWriter { plane in try plane.registerInstanceWithKey(instanceName: instance, tags: given) }
        }
        let plane = responder.plane
        return .members([
            ("InstanceName", .string(instance)), ("IamUserArn", .string(plane.instanceUserArn(instance))),
            ("AccessKeyId", .string(key.accessKeyId)), ("SecretAccessKey", .string(key.secretAccessKey ?? "")),
            ("Region", .string(plane.region)),
        ])
    }

    static let deregisterInstance = DeployctlOperation(name: "DeregisterInstance") { responder, input throws(OperationRefusal) in
        let instance = try instanceName(input)
        try await storeWork { try await responder.onWriter { plane in try plane.deregisterInstanceWithKeys(instanceName: instance) } }
        return .object([])
    }
}
