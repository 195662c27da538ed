import Foundation

/// A shape that builds its own ``JSONValue``: exactly what ``JSONValueEncoder`` makes of it through `Codable`
/// (members in the model's order, nil left out, dates as the encoder's ``JSONValueEncoder/DateEncoding`` says), without
/// Codable's containers. For the shapes written on every agent request: the server stores an instance target twice
/// for each lifecycle event of each instance, and encoding it through `Codable` was a third of the writer thread's
/// time in a 1,000-agent deployment (BENCHMARKS.md). `JSONValueEncoder.encode` takes this path for a value that is
/// one of these shapes; `DirectJSONTests` holds it to the `Codable` path's output.
public protocol DirectJSONEncodable: Encodable {
    func jsonValue(dates: JSONValueEncoder.DateEncoding) -> JSONValue
}

extension JSONValueEncoder.DateEncoding {
    /// `date` as this encoding writes it (the same expression as the encoder's).
    func value(_ date: Date) -> JSONValue {
        switch self {
        case .display: return .string(Timestamp.format(date))
        case .epochSeconds: return .double((date.timeIntervalSince1970 * 1000).rounded() / 1000)
        }
    }
}

extension InstanceTarget: DirectJSONEncodable {
    public func jsonValue(dates: JSONValueEncoder.DateEncoding) -> JSONValue {
        var members: [JSONMember] = []
        members.reserveCapacity(7)
        if let deploymentId { members.append(JSONMember("deploymentId", .string(deploymentId))) }
        if let targetId { members.append(JSONMember("targetId", .string(targetId))) }
        if let targetArn { members.append(JSONMember("targetArn", .string(targetArn))) }
        if let status { members.append(JSONMember("status", .string(status.rawValue))) }
        if let lastUpdatedAt { members.append(JSONMember("lastUpdatedAt", dates.value(lastUpdatedAt))) }
        if let lifecycleEvents { members.append(JSONMember("lifecycleEvents", .array(lifecycleEvents.map { $0.jsonValue(dates: dates) }))) }
        if let instanceLabel { members.append(JSONMember("instanceLabel", .string(instanceLabel.rawValue))) }
        return .object(members)
    }
}

extension LifecycleEvent: DirectJSONEncodable {
    public func jsonValue(dates: JSONValueEncoder.DateEncoding) -> JSONValue {
        var members: [JSONMember] = []
        members.reserveCapacity(5)
        if let lifecycleEventName { members.append(JSONMember("lifecycleEventName", .string(lifecycleEventName))) }
        if let diagnostics { members.append(JSONMember("diagnostics", diagnostics.jsonValue(dates: dates))) }
        if let startTime { members.append(JSONMember("startTime", dates.value(startTime))) }
        if let endTime { members.append(JSONMember("endTime", dates.value(endTime))) }
        if let status { members.append(JSONMember("status", .string(status.rawValue))) }
        return .object(members)
    }
}

extension Diagnostics: DirectJSONEncodable {
    public func jsonValue(dates: JSONValueEncoder.DateEncoding) -> JSONValue {
        var members: [JSONMember] = []
        members.reserveCapacity(4)
        if let errorCode { members.append(JSONMember("errorCode", .string(errorCode.rawValue))) }
        if let scriptName { members.append(JSONMember("scriptName", .string(scriptName))) }
        if let message { members.append(JSONMember("message", .string(message))) }
        if let logTail { members.append(JSONMember("logTail", .string(logTail))) }
        return .object(members)
    }
}
