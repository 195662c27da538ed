import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// How many client connections are open, against the cap (`--max-connections`). A connection over the cap is closed
/// the moment it opens: a fast refusal for that client, never a hang for everybody (issue 22, item 5).
final class ConnectionLimiter: Sendable {
    let limit: Int
    private let count = Atomic<Int>(0)
    private let onRefusal: @Sendable () -> Void

    /// `onRefusal` counts each connection closed for the cap (a metric).
    init(limit: Int, onRefusal: @escaping @Sendable () -> Void = {}) {
        self.limit = limit
        self.onRefusal = onRefusal
    }

    /// Counts a new connection; false (and not counted) when `limit` are open.
    func open() -> Bool {
        let now = count.wrappingAdd(1, ordering: .relaxed).newValue
        if now > limit {
            count.wrappingSubtract(1, ordering: .relaxed)
            onRefusal()
            return false
        }
        return true
    }

    func close() { count.wrappingSubtract(1, ordering: .relaxed) }

    var openCount: Int { count.load(ordering: .relaxed) }

    private let sweeps = Mutex<[ObjectIdentifier: NIOLoopBound<ConnectionSweep>]>([:])

    /// The sweep of `eventLoop` (made, and its once-a-second task started, on first use). Call on `eventLoop`.
    func sweep(on eventLoop: any EventLoop) -> ConnectionSweep {
        let key = ObjectIdentifier(eventLoop)
        if let bound = sweeps.withLock({ $0[key] }) { return bound.value }
        let sweep = ConnectionSweep()
        let bound = NIOLoopBound(sweep, eventLoop: eventLoop)
        sweeps.withLock { $0[key] = bound }
        eventLoop.scheduleRepeatedTask(initialDelay: ConnectionSweep.period, delay: ConnectionSweep.period) { _ in bound.value.run() }
        return sweep
    }
}

/// The time limits a connection must keep (SECURITY.md, "Limits").
struct ConnectionDeadlines: Sendable {
    /// From the connection opening (TLS handshake included) to its first complete request head.
    var firstHeader: TimeAmount = .seconds(10)
    /// A request body must bring at least ``minimumBodyBytes`` in every window of this length.
    var bodyWindow: TimeAmount = .seconds(10)
    /// 10 KiB per 10 s: a client on the slowest link still makes it; one that trickles a large body does not.
    var minimumBodyBytes = 10 << 10
}

/// Per connection: counts it against the ``ConnectionLimiter``, closes it when its first request head has not
/// arrived within ``ConnectionDeadlines/firstHeader`` (slow headers, a TLS handshake that never ends) or when a request
/// body arrives slower than the minimum rate (a trickled upload). Idle keep-alive connections are closed by
/// Hummingbird's idle timeout (`--idle-timeout`). The deadlines are checked by its event loop's
/// ``ConnectionSweep``, which sees a connection only while it waits for its first head or reads a body: a connection
/// holding a long poll or idle between requests costs no timer.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limiter: ConnectionLimiter
    let deadlines: ConnectionDeadlines
    private var counted = false
    private var started = false
    private var channel: (any Channel)?
    private var sweep: ConnectionSweep?
    private var awaitingFirstHead = false
    private var inBody = false
    /// Since when the current deadline runs: the connection's opening, then the current body window's start.
    private var since = NIODeadline.now()
    private var bodyBytes = 0

    init(limiter: ConnectionLimiter, deadlines: ConnectionDeadlines) {
        self.limiter = limiter
        self.deadlines = deadlines
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        let channel = context.channel
        guard limiter.open() else {
            channel.close(promise: nil)
            return
        }
        counted = true
        self.channel = channel
        sweep = limiter.sweep(on: context.eventLoop)
        awaitingFirstHead = true
        since = .now()
        sweep?.watch(self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    private func stop() {
        sweep?.unwatch(self)
        sweep = nil
        channel = nil
        if counted {
            counted = false
            limiter.close()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            awaitingFirstHead = false
            inBody = true
            bodyBytes = 0
            since = .now()
            sweep?.watch(self)
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            inBody = false
            sweep?.unwatch(self)
        }
        context.fireChannelRead(data)
    }

    /// Called by the sweep on the connection's event loop: closes the connection when a deadline has passed.
    fileprivate func check(now: NIODeadline) {
        if awaitingFirstHead {
            if now - since >= deadlines.firstHeader { close() }
        } else if inBody, now - since >= deadlines.bodyWindow {
            if bodyBytes < deadlines.minimumBodyBytes {
                close()
            } else {
                bodyBytes = 0
                since = now
            }
        }
    }

    private func close() {
        let channel = self.channel
        sweep?.unwatch(self)
        channel?.close(promise: nil)
    }
}

/// The connections of one event loop that have a deadline running (waiting for a first request head, or reading a
/// body), checked once a second by one repeated task. Per-connection timers made NIO's timer heap as large as the
/// fleet (10,000 idle agents: a thousand timer firings a second, each sifting a 10,000-entry heap). Used only on its
/// event loop.
final class ConnectionSweep {
    static let period: TimeAmount = .seconds(1)
    private var watched: [ObjectIdentifier: ConnectionGuard] = [:]

    fileprivate func watch(_ connection: ConnectionGuard) { watched[ObjectIdentifier(connection)] = connection }
    fileprivate func unwatch(_ connection: ConnectionGuard) { watched[ObjectIdentifier(connection)] = nil }

    fileprivate func run() {
        guard !watched.isEmpty else { return }
        let now = NIODeadline.now()
        for connection in Array(watched.values) { connection.check(now: now) }
    }
}

/// The process's open-file limit. `deployctl server` raises the soft limit to the hard one at start (each connection
/// is a descriptor; the usual soft limit of 1,024 is exhausted by 1,000 agents) and sizes its connection cap from it.
public struct OpenFileLimit: Sendable, Equatable {
    public var soft: Int
    public var hard: Int

    /// Descriptors kept for the store, object files, TLS files and logs, beside connections.
    public static let reserve = 512

    public static var current: OpenFileLimit {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return OpenFileLimit(soft: 1024, hard: 1024) }
        return OpenFileLimit(soft: Self.clamp(limit.rlim_cur), hard: Self.clamp(limit.rlim_max))
    }

    /// Raises the soft limit to the hard limit; answers the limit before and after.
    @discardableResult
    public static func raise() -> (before: OpenFileLimit, after: OpenFileLimit) {
        let before = current
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return (before, current)
    }

    /// The default `--max-connections`: the soft limit less ``reserve``, at least 64 (and at most a million).
    public var connectionBudget: Int { min(1_000_000, max(64, soft - Self.reserve)) }

    static func clamp(_ value: rlim_t) -> Int { value > rlim_t(Int32.max) ? Int(Int32.max) : Int(value) }
}
