import Foundation

/// One node of a balancer as a traffic step drives it: read its servers, change one's state or weight, wait for its
/// sessions to end (DESIGN.md: the balancer behind a protocol). HAProxy's runtime API is the one implementation; the
/// driver's unit tests use a fake.
public protocol BalancerNode: Sendable {
    var address: RuntimeAddress { get }
    func servers(backend: String) throws(TrafficControlError) -> [ServerStatus]
    func status(backend: String, server: String) throws(TrafficControlError) -> ServerStatus
    /// `ready`, `drain` or `maint`.
    func setState(backend: String, server: String, _ state: String) throws(TrafficControlError)
    /// 0 to 256, or a percentage of the configured weight (`100%`).
    func setWeight(backend: String, server: String, _ weight: String) throws(TrafficControlError)
    func waitUntilIdle(backend: String, server: String, timeout: TimeInterval, poll: TimeInterval) throws(TrafficControlError) -> ServerStatus
}

extension HAProxyRuntime: BalancerNode {}

/// The balancers deployctl may drive, by the name a deployment group's `loadBalancerInfo` gives them: what
/// `--load-balancer NAME=ADDRESS` says (repeatable; the same NAME given twice is an HA pair, and every change goes to
/// both nodes).
public struct Balancers: Sendable, Equatable {
    public private(set) var nodes: [String: [RuntimeAddress]] = [:]
    /// How long BlockTraffic waits for a drained server's sessions to end before it puts the server in maintenance
    /// anyway (AWS's deregistration delay, 300 s by default).
    public var drainTimeout: TimeInterval = 300
    /// How long AllowTraffic waits for a server's health checks to pass before the event fails (AWS waits up to 1 hour).
    public var healthTimeout: TimeInterval = 3600

    public init() {}

    /// Parses `--load-balancer` values (`NAME=unix:/PATH` or `NAME=tcp:HOST:PORT`).
    public init(parsing values: [String]) throws(TrafficControlError) {
        for value in values {
            guard let equals = value.firstIndex(of: "=") else { throw .badBalancer(value) }
            let name = String(value[..<equals])
            do {
                try HAProxyRuntime.checkName(name)
            } catch {
                throw .badBalancer(value)
            }
            let address = try RuntimeAddress(parsing: String(value[value.index(after: equals)...]))
            if nodes[name, default: []].contains(address) { continue }
            nodes[name, default: []].append(address)
        }
    }

    public var isEmpty: Bool { nodes.isEmpty }

    /// The runtime API of every node of balancer `name`.
    public func addresses(of name: String) throws(TrafficControlError) -> [RuntimeAddress] {
        guard let found = nodes[name], !found.isEmpty else { throw .notConfigured(name, configured: nodes.keys.sorted()) }
        return found
    }
}
