import ArgumentParser
import DeployModel
import Foundation
import Logging

/// `deployctl agent run --log-format`.
enum AgentLogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// A swift-log handler writing one JSON object per line on stderr, for journald and log shippers:
/// `{"time": "2026-…Z", "level": "info", "logger": "deployctl.agent", "message": "…", <metadata…>}`.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [(String, JSONValue)] = [
            ("time", .string(Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))),
            ("level", .string(event.level.rawValue)), ("logger", .string(label)), ("message", .string(event.message.description)),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { _, given in given }
        for key in merged.keys.sorted() where !["time", "level", "logger", "message"].contains(key) {
            if let value = merged[key] { fields.append((key, Self.json(value))) }
        }
        StandardStreams.err(JSONValue.members(fields).compact() + "\n")
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string(c.description)
        case .array(let items): return .array(items.map(json))
        case .dictionary(let d): return .members(d.keys.sorted().compactMap { key in d[key].map { (key, json($0)) } })
        }
    }
}
