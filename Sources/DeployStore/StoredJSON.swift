import DeployModel
import Foundation
import Synchronization

// How every store keeps API-shaped values in a column: compact JSON, decoded once per distinct text.

/// Encodes a value as compact JSON for a column (dates as epoch seconds, the canonical form).
public func storedJSON<T: Encodable>(_ value: T) throws -> String {
    try JSONValueEncoder().encode(value).compact()
}

/// Decodes a column written by `storedJSON` (or by an older deployctl that stored ISO dates).
public func fromStoredJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    try JSONValueDecoder(reportsUnknownMembers: false).decode(type, from: JSONValue.parse(text))
}

/// Decoded values of stored JSON by its text, shared by every transaction of this process: a fleet's agents read
/// the same deployment and target rows again and again, and decoding them was a tenth of the server's CPU at 1,000
/// agents. The key is the text itself, so an entry can never be stale, whoever wrote the row. Two generations of
/// at most `capacity` entries each: a hit in the older one moves the entry to the newer; when the newer is full it
/// becomes the older, and the oldest entries go.
public final class StoredJSONCache<Value: Decodable & Sendable>: Sendable {
    private struct Generations {
        var newer: [String: Value] = [:]
        var older: [String: Value] = [:]
    }
    private let generations = Mutex(Generations())
    public let capacity: Int

    public init(capacity: Int) {
        self.capacity = capacity
    }

    public func decode(_ text: String) throws -> Value {
        let known = generations.withLock { state -> Value? in
            if let value = state.newer[text] { return value }
            guard let value = state.older.removeValue(forKey: text) else { return nil }
            Self.insert(&state, text, value, capacity: capacity)
            return value
        }
        if let known { return known }
        let value = try fromStoredJSON(Value.self, text)
        generations.withLock { Self.insert(&$0, text, value, capacity: capacity) }
        return value
    }

    /// Remembers what a write stored: the next read of the row decodes nothing. Stored JSON decodes to the value
    /// it was encoded from (`StoredJSONTests` checks it for the cached types).
    public func remember(_ text: String, as value: Value) {
        generations.withLock { Self.insert(&$0, text, value, capacity: capacity) }
    }

    private static func insert(_ state: inout Generations, _ text: String, _ value: Value, capacity: Int) {
        if state.newer.count >= capacity {
            state.older = state.newer
            state.newer = [:]
        }
        state.newer[text] = value
    }
}
