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

extension JSONValue {
    /// An object of the members whose value is there, in the order given (what the encoder writes for a shape's
    /// optional members: a nil one is left out).
    static func present(_ members: [(String, JSONValue?)]) -> JSONValue {
        .object(members.compactMap { key, value in value.map { JSONMember(key, $0) } })
    }
}

extension InstanceTarget: DirectJSONEncodable {
    public func jsonValue(dates: JSONValueEncoder.DateEncoding) -> JSONValue {
        .present([
            ("deploymentId", deploymentId.map(JSONValue.string)), ("targetId", targetId.map(JSONValue.string)),
            ("targetArn", targetArn.map(JSONValue.string)), ("status", status.map { .string($0.rawValue) }),
            ("lastUpdatedAt", lastUpdatedAt.map(dates.value)),
            ("lifecycleEvents", lifecycleEvents.map { .array($0.map { $0.jsonValue(dates: dates) }) }),
            ("instanceLabel", instanceLabel.map { .string($0.rawValue) }),
        ])
    }
}

extension LifecycleEvent: DirectJSONEncodable {
    public func jsonValue(dates: JSONValueEncoder.DateEncoding) -> JSONValue {
        .present([
            ("lifecycleEventName", lifecycleEventName.map(JSONValue.string)), ("diagnostics", diagnostics.map { $0.jsonValue(dates: dates) }),
            ("startTime", startTime.map(dates.value)), ("endTime", endTime.map(dates.value)), ("status", status.map { .string($0.rawValue) }),
        ])
    }
}

extension Diagnostics: DirectJSONEncodable {
    public func jsonValue(dates: JSONValueEncoder.DateEncoding) -> JSONValue {
        .present([
            ("errorCode", errorCode.map { .string($0.rawValue) }), ("scriptName", scriptName.map(JSONValue.string)),
            ("message", message.map(JSONValue.string)), ("logTail", logTail.map(JSONValue.string)),
        ])
    }
}
