import ControlPlane
import Foundation
import HostCommandModel
import Synchronization

/// Drives the balancers for deployments with traffic control: claims the control plane's outstanding
/// ``TrafficStep``s, runs each against every node of the balancers it names (HAProxy's runtime API) and completes it
/// with what was done. `deployctl server` runs one for all instances; on a state file, each `deployctl agent run` runs
/// one for its own instance.
///
/// - BlockTraffic: checks that every instance of the deployment has its server in each backend (so a deployment with a
///   missing server fails before any instance is drained), drains the instance's server on every node, waits until
///   its sessions end (at most ``Balancers/drainTimeout``), then puts it in maintenance (health checks stop).
/// - AllowTraffic: takes the server from maintenance to drain (checked, no traffic), waits until its health checks
///   really pass on every node (at most ``Balancers/healthTimeout``), then sets it ready; on a timeout the event fails
///   with the check's last status and the server stays out of load balancing.
///
/// Each step runs on a thread of its own (the runtime API blocks); at most ``maxConcurrent`` at once, the others on a
/// later pass.
public final class TrafficDriver: Sendable {
    public let plane: ControlPlane
    public let balancers: Balancers
    public let maxConcurrent: Int
    /// How often drains and health checks are looked at.
    public let pollInterval: TimeInterval
    /// The node at an address, reporting each command it sends (HAProxy's runtime API; a fake in unit tests).
    let connect: @Sendable (RuntimeAddress, @escaping @Sendable (String) -> Void) -> any BalancerNode
    private let running = Mutex<Set<String>>([])

    public convenience init(plane: ControlPlane, balancers: Balancers, maxConcurrent: Int = 32, pollInterval: TimeInterval = 0.1) {
        self.init(plane: plane, balancers: balancers, maxConcurrent: maxConcurrent, pollInterval: pollInterval) { address, sent in
            var runtime = HAProxyRuntime(address: address)
            runtime.onCommand = sent
            return runtime
        }
    }

    init(
        plane: ControlPlane, balancers: Balancers, maxConcurrent: Int = 32, pollInterval: TimeInterval = 0.1,
        connect: @escaping @Sendable (RuntimeAddress, @escaping @Sendable (String) -> Void) -> any BalancerNode
    ) {
        self.plane = plane
        self.balancers = balancers
        self.maxConcurrent = max(1, maxConcurrent)
        self.pollInterval = pollInterval
        self.connect = connect
    }

    /// Starts every outstanding step (of `instanceName` only, when given) not already running, each on its own
    /// thread; `completed` is called with the instances whose agents may have work once a step ends. Answers how many
    /// started. Never blocks on a balancer.
    @discardableResult
    public func startOutstanding(instanceName: String? = nil, completed: @escaping @Sendable ([String]) -> Void) throws -> Int {
        let steps = try plane.trafficSteps(instanceName: instanceName)
        var started = 0
        for step in steps {
            let claimed = running.withLock { running -> Bool in
                guard running.count < maxConcurrent, !running.contains(step.commandId) else { return false }
                running.insert(step.commandId)
                return true
            }
            guard claimed else { continue }
            started += 1
            Thread.detachNewThread { [self] in
                let woken = self.runAndComplete(step)
                self.running.withLock { _ = $0.remove(step.commandId) }
                completed(woken)
            }
        }
        return started
    }

    /// Runs every outstanding step of `instanceName` to its end, one after the other, off the caller's thread;
    /// answers how many ran (the local agent's way: its next poll then finds the events that follow).
    public func runOutstanding(instanceName: String) async throws -> Int {
        let steps = try plane.trafficSteps(instanceName: instanceName)
        for step in steps {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread { [self] in
                    _ = self.runAndComplete(step)
                    continuation.resume()
                }
            }
        }
        return steps.count
    }

    /// Claims, runs and completes one step; answers the instances to wake. A step the control plane no longer has
    /// (completed by another driver, or expired) changes nothing.
    func runAndComplete(_ step: TrafficStep) -> [String] {
        let limit: TimeInterval
        switch step.action {
        case .block: limit = balancers.drainTimeout
        case .allow: limit = balancers.healthTimeout
        case .shift: limit = 30
        }
        do {
            try plane.claimTrafficStep(id: step.commandId, expectedSeconds: Int(limit.rounded(.up)) + 30)
        } catch {
            return []
        }
        let report = run(step)
        return (try? plane.completeTrafficStep(id: step.commandId, report: report)) ?? []
    }

    /// Runs the step against the balancers; the report carries every command sent, in order, in its log tail.
    public func run(_ step: TrafficStep) -> HostCommandReport {
        let transcript = Transcript()
        let started = Date()
        do {
            let nodes = try step.targets.flatMap { target throws(TrafficControlError) in
                try balancers.addresses(of: target).map { address in
                    (backend: target, runtime: connect(address) { transcript.append("\(address) \($0)") })
                }
            }
            let summary: String
            switch step.action {
            case .block: summary = try block(step, nodes: nodes)
            case .allow: summary = try allow(step, nodes: nodes)
            case .shift: summary = try shift(step, nodes: nodes)
            }
            let seconds = String(format: "%.1f", Date().timeIntervalSince(started))
            return HostCommandReport(
                status: .succeeded, errorCode: "Success", message: "\(summary) in \(seconds) s", logTail: transcript.text)
        } catch {
            return HostCommandReport(
                status: .failed, errorCode: "UnknownError", message: "\(step.action.rawValue): \(error)", logTail: transcript.text)
        }
    }

    typealias Node = (backend: String, runtime: any BalancerNode)

    func block(_ step: TrafficStep, nodes: [Node]) throws(TrafficControlError) -> String {
        // Every instance's server must be there before the first is drained.
        for node in nodes {
            let present = Set(try node.runtime.servers(backend: node.backend).map(\.server))
            let missing = step.deploymentServers.filter { !present.contains($0) }
            if !missing.isEmpty { throw .missingServers(node.runtime.address, backend: node.backend, servers: missing) }
        }
        for node in nodes { try node.runtime.setState(backend: node.backend, server: step.serverName, "drain") }
        let deadline = Date().addingTimeInterval(balancers.drainTimeout)
        var left: [String] = []
        for node in nodes {
            let status = try node.runtime.waitUntilIdle(
                backend: node.backend, server: step.serverName, timeout: max(0, deadline.timeIntervalSinceNow), poll: pollInterval)
            if status.sessions > 0 || status.queued > 0 { left.append(status.summary) }
        }
        for node in nodes { try node.runtime.setState(backend: node.backend, server: step.serverName, "maint") }
        let names = Set(nodes.map { "\($0.backend)/\(step.serverName)" }).sorted().joined(separator: ", ")
        return left.isEmpty
            ? "Drained \(names) on \(nodes.count) node(s), now in maintenance"
            : "Drain timeout (\(Int(balancers.drainTimeout)) s) reached with sessions left (\(left.joined(separator: "; "))); now in maintenance"
    }

    func allow(_ step: TrafficStep, nodes: [Node]) throws(TrafficControlError) -> String {
        for node in nodes where try node.runtime.status(backend: node.backend, server: step.serverName).status.hasPrefix("MAINT") {
            try node.runtime.setState(backend: node.backend, server: step.serverName, "drain")
        }
        let deadline = Date().addingTimeInterval(balancers.healthTimeout)
        for node in nodes {
            while true {
                let status = try node.runtime.status(backend: node.backend, server: step.serverName)
                if status.checksPass { break }
                if Date() >= deadline {
                    throw .timedOut(
                        node.runtime.address, backend: node.backend, server: step.serverName,
                        waitingFor: "pass its health checks within \(Int(balancers.healthTimeout)) s (it stays out of load balancing)",
                        last: status.summary)
                }
                usleep(UInt32(pollInterval * 1_000_000))
            }
        }
        let weight: String? =
            switch step.weight {
            case .zero?: "0"
            case .restore?: "100%"
            case nil: nil
            }
        for node in nodes {
            if let weight { try node.runtime.setWeight(backend: node.backend, server: step.serverName, weight) }
            try node.runtime.setState(backend: node.backend, server: step.serverName, "ready")
        }
        let names = Set(nodes.map { "\($0.backend)/\(step.serverName)" }).sorted().joined(separator: ", ")
        let note =
            step.weight == .zero ? " at weight 0 (traffic shifting gives it requests)" : step.weight == .restore ? " at its configured weight" : ""
        return "Health checks passed; \(names) ready\(note) on \(nodes.count) node(s)"
    }

    /// A shift step: weights in both fleets so that green gets `greenShare` % of the requests (HAProxy shares a
    /// backend's requests in proportion to its servers' weights, 0 to 256 each). At 100 % green gets its configured
    /// weight back and blue weight 0.
    func shift(_ step: TrafficStep, nodes: [Node]) throws(TrafficControlError) -> String {
        let share = step.greenShare ?? 100
        let (green, blue) = Self.weights(share: share, green: step.greenServers.count, blue: step.blueServers.count)
        for node in nodes {
            for server in step.greenServers { try node.runtime.setWeight(backend: node.backend, server: server, green) }
            for server in step.blueServers { try node.runtime.setWeight(backend: node.backend, server: server, blue) }
        }
        return
            "\(share)% of requests to the green fleet: weight \(green) on \(step.greenServers.count) green, \(blue) on \(step.blueServers.count) blue server(s), \(nodes.count) node(s)"
    }

    /// Per-server weights giving `green` servers `share` % of the requests against `blue` servers.
    static func weights(share: Int, green: Int, blue: Int) -> (green: String, blue: String) {
        if share >= 100 || blue == 0 { return ("100%", "0") }
        if share <= 0 || green == 0 { return ("0", "100%") }
        var g = share * blue
        var b = (100 - share) * green
        func gcd(_ x: Int, _ y: Int) -> Int { y == 0 ? x : gcd(y, x % y) }
        let divisor = gcd(g, b)
        g /= divisor
        b /= divisor
        if max(g, b) > 256 {
            let scale = 256.0 / Double(max(g, b))
            g = max(1, Int((Double(g) * scale).rounded()))
            b = max(1, Int((Double(b) * scale).rounded()))
        }
        return (String(g), String(b))
    }
}

/// The commands a step sent, one line each with the seconds since it started.
final class Transcript: Sendable {
    private let lines = Mutex<[String]>([])
    private let started = Date()

    func append(_ command: String) {
        let line = String(format: "+%.2fs ", Date().timeIntervalSince(started)) + command
        lines.withLock { lines in
            // `show stat` polls repeat: keep the first of a run of identical commands.
            if let last = lines.last, last.hasSuffix(command), command.hasPrefix("show") || command.contains(" show ") { return }
            lines.append(line)
        }
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}
