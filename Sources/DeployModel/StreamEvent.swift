import Foundation

/// One entry of the event stream as `deployctl events` and `Deployctl_20261130.ListEvents` give it: its sequence
/// number (to resume after) and the event, in EventBridge's shape for CodeDeploy.
public struct StreamEvent: Sendable, Equatable {
    public var sequence: Int64
    public var event: JSONValue

    public init(sequence: Int64, event: JSONValue) {
        self.sequence = sequence
        self.event = event
    }

    public var json: JSONValue { .members([("sequence", .int(Int(sequence))), ("event", event)]) }
}

/// Which events to list: those after a sequence number, of one deployment or application, from a time on.
public struct StreamEventQuery: Sendable, Equatable {
    public var after: Int64
    public var deploymentId: String?
    public var applicationName: String?
    /// Only events at or after this time.
    public var since: Date?
    public var limit: Int
    /// When nothing is there yet, wait up to this long for the first event (a long poll; 0 answers at once).
    public var wait: TimeInterval

    public init(
        after: Int64 = 0, deploymentId: String? = nil, applicationName: String? = nil, since: Date? = nil, limit: Int = 1000,
        wait: TimeInterval = 0
    ) {
        self.after = after
        self.deploymentId = deploymentId
        self.applicationName = applicationName
        self.since = since
        self.limit = limit
        self.wait = wait
    }

    /// The most events one answer carries, and the longest a caller may ask to wait.
    public static let maxLimit = 1000
    public static let maxWait: TimeInterval = 20
}

/// Where the event stream can be read: the control plane on the state file, or a server over the network.
public protocol EventStreamSource: Sendable {
    func listEvents(_ query: StreamEventQuery) async throws -> [StreamEvent]
}
