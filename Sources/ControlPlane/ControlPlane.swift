import DeployModel
import DeployStore
import Foundation
import Synchronization

/// The CodeDeploy API operations over a ``DeployStore``. Every operation takes the model's input shape and returns
/// its output shape (or throws a `ServiceError` with the model's exception name), and runs as one store
/// transaction, so a killed process never leaves half a resource behind. The rules live here; the SQL lives in
/// `DeployStoreSQLite` (ARCHITECTURE.md). Nothing here prints or exits.
public final class ControlPlane: Sendable {
    public let store: any DeployStore
    /// Region and account used in ARNs (`arn:aws:codedeploy:<region>:<account>:application:<name>`).
    public let region: String
    public let account: String
    let clock: @Sendable () -> Date
    /// Whether read operations first fail overdue host commands (the CLI and agents: nothing else would). A server
    /// sets it false and expires them on its own clock, so its reads never write.
    public let expiresOnRead: Bool
    /// How long an agent has to acknowledge a command, and how long past its expected duration a command may run
    /// before the agent is presumed gone and the event fails (60 s).
    public let agentGrace: TimeInterval
    /// How long the event stream keeps an event: older ones are deleted, a thousand at a time, by each
    /// `create-deployment` (so a state file that deploys keeps a bounded stream with nothing else running).
    public let eventRetention: TimeInterval
    let eventSubjects = EventSubjects()
    private let accessChangeCount = Atomic<UInt64>(0)

    public static let defaultEventRetention: TimeInterval = 14 * 86_400

    public init(
        store: any DeployStore, region: String = "local", account: String = "000000000000", expiresOnRead: Bool = true,
        agentGrace: TimeInterval = 60, eventRetention: TimeInterval = ControlPlane.defaultEventRetention,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.region = region
        self.account = account
        self.expiresOnRead = expiresOnRead
        self.agentGrace = max(1, agentGrace)
        self.eventRetention = max(60, eventRetention)
        self.clock = clock
    }

    /// The current time, rounded to milliseconds as AWS reports times.
    func now() -> Date {
        Date(timeIntervalSince1970: (clock().timeIntervalSince1970 * 1000).rounded() / 1000)
    }

    /// Runs `body` with its writes committed together, each still whole or nothing (``DeployStore/batched(_:)``):
    /// the server's writer commits the requests that queued while its last commit ran as one group.
    public func batched<T>(_ body: () throws -> T) throws -> T {
        try store.batched(body)
    }

    /// Changes to who may sign and as what (access keys created, deactivated or deleted; instances registered or
    /// deregistered) counted so far. A cache of credentials or of instance identities (the server's) stays valid
    /// while this is unchanged: take it *before* reading what to cache. It moves inside the change's transaction,
    /// and a server that commits in groups moves it again after the commit (``noteAccessChange()``), so a read made
    /// between the two is not kept.
    public var accessChanges: UInt64 { accessChangeCount.load(ordering: .acquiring) }

    /// Counts a change to access (see ``accessChanges``); also for a change made by another process.
    public func noteAccessChange() { accessChangeCount.add(1, ordering: .releasing) }

    func arnPrefix() -> String { "arn:aws:codedeploy:\(region):\(account):" }
}

// MARK: - Common validation

enum Validate {
    static func name(_ value: String?, required: String, invalid: String, what: String, max: Int = 100) throws -> String {
        guard let value, !value.isEmpty else { throw ServiceError(required, "The \(what) name must be specified.") }
        guard value.count <= max else {
            throw ServiceError(invalid, "The \(what) name '\(value.prefix(40))…' (\(value.count) characters) is longer than \(max) characters.")
        }
        // Control characters (line breaks, escape sequences that would rewrite a terminal) are refused.
        if let bad = value.unicodeScalars.first(where: { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }) {
            throw ServiceError(
                invalid, "The \(what) name contains the control character U+\(String(format: "%04X", bad.value)); names are printable text.")
        }
        return value
    }

    static func applicationName(_ value: String?) throws -> String {
        try name(value, required: "ApplicationNameRequiredException", invalid: "InvalidApplicationNameException", what: "application")
    }

    static func groupName(_ value: String?) throws -> String {
        try name(
            value, required: "DeploymentGroupNameRequiredException", invalid: "InvalidDeploymentGroupNameException",
            what: "deployment group")
    }

    static func configName(_ value: String?) throws -> String {
        try name(
            value, required: "DeploymentConfigNameRequiredException", invalid: "InvalidDeploymentConfigNameException",
            what: "deployment configuration")
    }

    static func deploymentId(_ value: String?) throws -> String {
        guard let value, !value.isEmpty else {
            throw ServiceError("DeploymentIdRequiredException", "At least one deployment ID must be specified.")
        }
        guard value.count <= 20, value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw ServiceError(
                "InvalidDeploymentIdException",
                "The deployment ID '\(value.prefix(40))\(value.count > 40 ? "…" : "")' is not valid: expected d- followed by 9 letters or digits.")
        }
        return value
    }

    static func instanceName(_ value: String?) throws -> String {
        guard let value, !value.isEmpty else {
            throw ServiceError("InstanceNameRequiredException", "An on-premises instance name must be specified.")
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-")
        guard value.count <= 100, value.allSatisfy({ allowed.contains($0) }) else {
            throw ServiceError(
                "InvalidInstanceNameException",
                "The on-premises instance name '\(value.prefix(100))\(value.count > 100 ? "…" : "")' is not valid: use at most 100 letters, digits and +=,.@_- characters."
            )
        }
        return value
    }

    static func batch<T>(_ items: [T], limit: Int, what: String, required: String) throws {
        guard !items.isEmpty else { throw ServiceError(required, "At least one \(what) must be specified.") }
        guard items.count <= limit else {
            throw ServiceError("BatchLimitExceededException", "The maximum number of \(what)s that can be requested is \(limit); got \(items.count).")
        }
    }
}

// MARK: - Identifiers

enum Identifier {
    static func uuid() -> String { UUID().uuidString.lowercased() }

    /// `d-` followed by 9 uppercase letters and digits, as CodeDeploy deployment IDs look.
    static func deploymentId() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        return "d-" + String((0..<9).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }

    static func suffix(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }
}

// MARK: - Paging

/// Offset-based pages behind opaque `nextToken`s.
enum Paging {
    static let pageSize = 100

    static func page<T>(_ items: [T], token: String?, pageSize: Int = Paging.pageSize) throws -> ([T], String?) {
        var offset = 0
        if let token, !token.isEmpty {
            guard token.hasPrefix("o"), let value = Int(token.dropFirst()), value >= 0, value <= items.count else {
                throw ServiceError("InvalidNextTokenException", "The next token '\(token)' is not valid.")
            }
            offset = value
        }
        let end = min(items.count, offset + pageSize)
        let next = end < items.count ? "o\(end)" : nil
        return (Array(items[offset..<end]), next)
    }
}

/// The local control plane serves the whole API: its synchronous methods witness the protocol's async ones.
extension ControlPlane: CodeDeployAPI {}
