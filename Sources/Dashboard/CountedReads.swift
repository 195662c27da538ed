import DeployStore
import Foundation

/// The store under the dashboard's pages, counting the read transactions a render makes on its thread (a page renders
/// synchronously on one reader thread), so the server can say how many each page cost (`Server-Timing`).
public final class CountedReads: DeployStore, Sendable {
    let base: any DeployStore
    static let key = "deployctl.dashboard.reads"

    public init(_ base: any DeployStore) { self.base = base }

    public func read<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        let dictionary = Thread.current.threadDictionary
        dictionary[Self.key] = ((dictionary[Self.key] as? Int) ?? 0) + 1
        return try base.read(body)
    }

    public func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T { try base.write(body) }
    public func batched<T>(_ body: () throws -> T) throws -> T { try base.batched(body) }

    /// Runs `body` and answers its result with the reads it made on this thread.
    public static func counting<T>(_ body: () throws -> T) rethrows -> (T, Int) {
        let dictionary = Thread.current.threadDictionary
        dictionary[key] = 0
        let result = try body()
        let reads = (dictionary[key] as? Int) ?? 0
        dictionary[key] = nil
        return (result, reads)
    }
}
