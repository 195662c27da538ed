import ControlPlane
import DeployStore
import Foundation
import Synchronization
import Testing

@testable import TrafficControl

/// The traffic steps' logic against a fake balancer node (the real HAProxy is in HAProxyRuntimeTests and
/// Tests/traffic): what is checked before anything changes, what a timeout leaves, which weights a shift sets.
@Suite struct TrafficDriverTests {
    /// A balancer node in memory: servers with a state, health and weight; every command recorded.
    final class FakeNode: BalancerNode {
        let address = RuntimeAddress.unix(path: "/fake/admin.sock")
        let servers: Mutex<[String: ServerStatus]>
        let sent: @Sendable (String) -> Void
        let checksPass: Bool

        init(_ names: [String], checksPass: Bool = true, sent: @escaping @Sendable (String) -> Void) {
            servers = Mutex(
                Dictionary(
                    uniqueKeysWithValues: names.map {
                        (
                            $0,
                            ServerStatus(
                                backend: "web", server: $0, status: checksPass ? "UP" : "MAINT", sessions: 0, queued: 0,
                                checkStatus: checksPass ? "L7OK" : "L7STS", checkHealth: checksPass ? 3 : 0, checkRise: 2, checkFall: 2, weight: 1)
                        )
                    }))
            self.checksPass = checksPass
            self.sent = sent
        }

        func servers(backend: String) throws(TrafficControlError) -> [ServerStatus] {
            sent("show stat")
            guard backend == "web" else { throw .noSuchBackend(address, backend: backend) }
            return servers.withLock { Array($0.values) }
        }

        func status(backend: String, server: String) throws(TrafficControlError) -> ServerStatus {
            guard let found = servers.withLock({ $0[server] }) else { throw .noSuchServer(address, backend: backend, server: server) }
            return found
        }

        func setState(backend: String, server: String, _ state: String) throws(TrafficControlError) {
            sent("set server \(backend)/\(server) state \(state)")
            let passing = checksPass
            servers.withLock {
                $0[server]?.status = state == "maint" ? "MAINT" : state == "drain" ? "DRAIN" : "UP"
                $0[server]?.checkStatus = passing ? "L7OK" : "L7STS"
                $0[server]?.checkHealth = passing ? 3 : 0
            }
        }

        func setWeight(backend: String, server: String, _ weight: String) throws(TrafficControlError) {
            sent("set weight \(backend)/\(server) \(weight)")
        }

        func waitUntilIdle(backend: String, server: String, timeout: TimeInterval, poll: TimeInterval) throws(TrafficControlError) -> ServerStatus {
            try status(backend: backend, server: server)
        }
    }

    /// The commands the fake nodes were sent, in order.
    final class Sent: Sendable {
        let lines = Mutex<[String]>([])
        func withLock<T>(_ body: (inout [String]) -> T) -> T { lines.withLock { body(&$0) } }
    }

    /// A driver whose nodes are fakes; answers it and the commands its nodes were sent.
    func driver(servers: [String], checksPass: Bool = true) throws -> (TrafficDriver, Sent) {
        var balancers = try Balancers(parsing: ["web=unix:/fake/admin.sock"])
        balancers.healthTimeout = 0.3
        let sent = Sent()
        let plane = ControlPlane(store: MemoryStore())
        let driver = TrafficDriver(plane: plane, balancers: balancers, pollInterval: 0.01) { _, report in
            FakeNode(servers, checksPass: checksPass) { command in
                sent.withLock { $0.append(command) }
                report(command)
            }
        }
        return (driver, sent)
    }

    func step(_ action: TrafficStep.Action, server: String = "web-1", all: [String] = ["web-1", "web-2"]) -> TrafficStep {
        TrafficStep(
            commandId: "ts-1", deploymentId: "d-1", instanceName: server, action: action, targets: ["web"], serverName: server,
            deploymentServers: all)
    }

    @Test func aMissingServerFailsBlockTrafficBeforeAnythingIsDrained() throws {
        let (driver, sent) = try driver(servers: ["web-1", "web-2"])
        let report = driver.run(step(.block, all: ["web-1", "web-2", "web-9"]))
        #expect(report.status == .failed)
        #expect(report.message?.contains("has no server 'web-9' in backend 'web'") == true, "\(report.message ?? "")")
        #expect(!sent.withLock { $0 }.contains { $0.hasPrefix("set server") })
    }

    @Test func blockDrainsThenPutsInMaintenanceAndSaysSo() throws {
        let (driver, sent) = try driver(servers: ["web-1", "web-2"])
        let report = driver.run(step(.block))
        #expect(report.status == .succeeded)
        #expect(sent.withLock { $0 }.filter { $0.hasPrefix("set") } == ["set server web/web-1 state drain", "set server web/web-1 state maint"])
        #expect(report.logTail?.contains("unix:/fake/admin.sock set server web/web-1 state maint") == true)
    }

    @Test func aHealthCheckThatNeverPassesLeavesTheServerOutOfLoadBalancing() throws {
        let (driver, sent) = try driver(servers: ["web-1"], checksPass: false)
        let report = driver.run(step(.allow, all: ["web-1"]))
        #expect(report.status == .failed)
        #expect(report.message?.contains("did not pass its health checks within 0 s") == true, "\(report.message ?? "")")
        #expect(!sent.withLock { $0 }.contains("set server web/web-1 state ready"))
    }

    @Test func aShiftSetsBothFleetsWeightsAndAGreenServerIsAdmittedAtWeightZero() throws {
        let (driver, sent) = try driver(servers: ["b1", "b2", "b3", "g1", "g2", "g3"])
        var shift = step(.shift, server: "g1")
        shift.greenShare = 10
        shift.greenServers = ["g1", "g2", "g3"]
        shift.blueServers = ["b1", "b2", "b3"]
        #expect(driver.run(shift).status == .succeeded)
        let weights = sent.withLock { $0 }.filter { $0.hasPrefix("set weight") }
        #expect(Set(weights) == Set(["g1", "g2", "g3"].map { "set weight web/\($0) 1" } + ["b1", "b2", "b3"].map { "set weight web/\($0) 9" }))
        sent.withLock { $0 = [] }
        var admit = step(.allow, server: "g1", all: ["g1"])
        admit.weight = .zero
        #expect(driver.run(admit).status == .succeeded)
        #expect(sent.withLock { $0 }.filter { $0.hasPrefix("set") }.suffix(2) == ["set weight web/g1 0", "set server web/g1 state ready"])
    }
}
