import Foundation
import HostCommandModel
import Logging
import ServiceLifecycle

/// `deployctl agent run` as a long-running service (swift-service-lifecycle): takes the instance's lease, reports
/// events a killed predecessor left behind, then polls and runs commands until a graceful shutdown (SIGTERM or
/// SIGINT through the ServiceGroup), which lets the current event finish (bounded by its timeouts) and gives the
/// lease back.
public struct AgentService: Service {
    public let loop: AgentLoop
    public let service: any HostCommandService
    public let identity: AgentIdentity
    public let pollInterval: Duration
    /// Process what is pending, then return (`--once`).
    public let once: Bool
    /// Asked before each poll: a reason to stop for good (the state file was replaced), or nil.
    public let health: @Sendable () -> String?
    public let logger: Logger
    /// Said once in the start line: where the control plane is, the install root.
    public let startDetails: Logger.Metadata
    /// Work this process drives between polls, answering how much it did: on a state file, the instance's
    /// BlockTraffic and AllowTraffic (the balancer's steps, which no agent command carries). After work, the agent
    /// polls again at once.
    public var betweenPolls: (@Sendable () async throws -> Int)?

    /// Why the agent stopped on its own.
    public struct Stopped: Error, CustomStringConvertible {
        public var description: String
    }

    public init(
        loop: AgentLoop, service: any HostCommandService, identity: AgentIdentity, pollInterval: Duration, once: Bool,
        health: @escaping @Sendable () -> String? = { nil }, logger: Logger, startDetails: Logger.Metadata = [:]
    ) {
        self.startDetails = startDetails
        self.loop = loop
        self.service = service
        self.identity = identity
        self.pollInterval = pollInterval
        self.once = once
        self.health = health
        self.logger = logger
    }

    /// How often the lease is renewed (a third of its lifetime).
    static let leaseRenewal: TimeInterval = 10

    public func run() async throws {
        let logger = self.logger
        try await withGracefulShutdownHandler {
            try await serve()
        } onGracefulShutdown: {
            logger.notice("stopping: a stop signal was received; the event running, if any, finishes first (bounded by its timeouts)")
        }
    }

    func serve() async throws {
        let instance = loop.instanceName
        try await service.acquireAgentLease(instanceName: instance, agent: identity)
        defer {
            // Best effort: a killed agent's lease is taken over anyway.
            let service = self.service
            let identity = self.identity
            Task { try? await service.releaseAgentLease(instanceName: instance, agent: identity) }
        }
        logger.info(
            "started",
            metadata: startDetails.merging(
                ["agent_root": .string(loop.engine.root.path), "pid": .stringConvertible(identity.pid), "host": .string(identity.hostName)]
            ) { given, _ in given })
        var renewed = Date()
        var failures = 0
        let recovered = await loop.recoverInterrupted()
        if recovered > 0 { logger.info("reported \(recovered) interrupted event(s) as failed") }
        // Two seconds after starting, and after each stretch of events: give back what that work used (IdleMemory),
        // while the agent waits for its next command.
        let activity = loop.activity
        let logger = self.logger
        let idleWatch = Task.detached {
            // Asleep while nothing happens (no CPU between polls); after activity, waits for two quiet seconds.
            var releasedAt = -1
            for await _ in activity.changes {
                while !Task.isCancelled {
                    let (generation, quietFor) = activity.state()
                    if generation == releasedAt { break }
                    if quietFor < 2 {
                        try? await Task.sleep(for: .milliseconds(Int64((2 - quietFor) * 1000) + 50))
                        continue
                    }
                    let released = IdleMemory.release()
                    logger.debug("released \(released >> 20) MiB of mapped code while idle")
                    releasedAt = generation
                }
                if Task.isCancelled { break }
            }
        }
        defer { idleWatch.cancel() }
        while !Task.isShuttingDownGracefully {
            if let problem = health() { throw Stopped(description: problem) }
            if Date().timeIntervalSince(renewed) > Self.leaseRenewal {
                try await service.acquireAgentLease(instanceName: instance, agent: identity)
                renewed = Date()
            }
            var drove = 0
            do {
                let ran = try await loop.runPending(shouldStop: { Task.isShuttingDownGracefully })
                if ran > 0 { logger.info("ran \(ran) lifecycle event(s)") }
                if let betweenPolls, !Task.isShuttingDownGracefully {
                    drove = try await betweenPolls()
                    if drove > 0 { logger.info("drove the load balancer for \(drove) traffic step(s)") }
                }
                failures = 0
            } catch let error as Stopped {
                throw error
            } catch is CancellationError where Task.isShuttingDownGracefully {
                break
            } catch {
                if Task.isShuttingDownGracefully {
                    // Said even when stopping: a result left on disk for the next start is the operator's to know.
                    logger.warning("\(error)")
                    break
                }
                logger.error("\(error)")
                failures += 1
            }
            if drove > 0 { continue }
            if once { break }
            // After failures (the server unreachable), wait longer each time, up to 30 s, with jitter.
            var interval = pollInterval
            if failures > 0 {
                let seconds = min(30, max(0.5, Double(pollInterval.components.seconds) + 0.5) * pow(2, Double(min(failures, 6))))
                interval = .milliseconds(Int64(seconds * 1000 * Double.random(in: 0.5...1)))
            }
            let wait = interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
        }
        try? await service.releaseAgentLease(instanceName: instance, agent: identity)
        logger.info("stopped")
    }
}
