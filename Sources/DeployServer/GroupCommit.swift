import ControlPlane
import Prometheus
import Synchronization

/// Group commit for the one writer thread. Requests that write (an agent's poll that hands out a command, its
/// acknowledgement, its completion) queue here; the writer takes everything queued, up to ``maxGroup``, and runs it
/// as one transaction with each request in its own savepoint (``ControlPlane/batched(_:)``), then answers each
/// request after the commit. Every request stays whole or nothing and is durable before it is answered; what
/// changes is that 1,000 agents completing at once cost tens of commits, not a thousand (each commit writes the
/// pages it touched to the WAL again: the writer spent most of its time there at fleet scale, BENCHMARKS.md).
final class GroupCommit: Sendable {
    private struct Pending: Sendable {
        /// Runs the request's writes (inside the group) and keeps its own outcome for ``finish``.
        let run: @Sendable (ControlPlane) -> Void
        /// Answers the request: with its own outcome, or with the group's error when the commit failed.
        let finish: @Sendable ((any Error)?) -> Void
    }

    private enum Admission { case start, queued, full }

    private struct State {
        var queue: [Pending] = []
        var draining = false
    }

    let writer: BlockingExecutor
    let plane: ControlPlane
    let maxGroup: Int
    /// Most requests that may wait; more are refused like a full executor queue.
    let maxQueue: Int
    private let state = Mutex(State())
    private let groups: Counter
    private let grouped: Counter

    init(writer: BlockingExecutor, plane: ControlPlane, metrics: ServerMetrics, maxGroup: Int = 128, maxQueue: Int = 10_000) {
        self.writer = writer
        self.plane = plane
        self.maxGroup = maxGroup
        self.maxQueue = maxQueue
        groups = metrics.counter("write_groups", "Transactions the writer committed for queued requests (group commit).")
        grouped = metrics.counter("write_group_requests", "Requests committed in those groups.")
    }

    /// Runs `body` with the next group and returns its result once the group has committed.
    func perform<T: Sendable>(_ body: @escaping @Sendable (ControlPlane) throws -> T) async throws -> T {
        let executorName = writer.name
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let outcome = Mutex<Result<T, any Error>?>(nil)
            let pending = Pending(
                run: { plane in
                    let result = Result { try body(plane) }
                    outcome.withLock { $0 = result }
                },
                finish: { groupError in
                    let own = outcome.withLock { $0 }
                    switch own {
                    case .failure(let error)?: continuation.resume(throwing: error)
                    case .success(let value)?:
                        if let groupError { continuation.resume(throwing: groupError) } else { continuation.resume(returning: value) }
                    case nil: continuation.resume(throwing: groupError ?? BlockingExecutor.Refusal(executor: executorName, shutDown: true))
                    }
                })
            let admission = state.withLock { state -> Admission in
                guard state.queue.count < maxQueue else { return .full }
                state.queue.append(pending)
                if state.draining { return .queued }
                state.draining = true
                return .start
            }
            switch admission {
            case .full: continuation.resume(throwing: BlockingExecutor.Refusal(executor: executorName, shutDown: false))
            case .queued: break
            case .start: Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        do {
            try await writer.perform { self.commitGroups() }
        } catch {
            // Refused (shut down): nothing queued will run.
            let left = state.withLock { state -> [Pending] in
                defer {
                    state.queue = []
                    state.draining = false
                }
                return state.queue
            }
            for pending in left { pending.finish(error) }
        }
    }

    /// On the writer thread: commits groups until the queue is empty.
    private func commitGroups() {
        while true {
            let group = state.withLock { state -> [Pending] in
                let taken = Array(state.queue.prefix(maxGroup))
                state.queue.removeFirst(taken.count)
                if taken.isEmpty { state.draining = false }
                return taken
            }
            if group.isEmpty { return }
            var failure: (any Error)?
            do {
                try plane.batched {
                    for pending in group { pending.run(plane) }
                }
            } catch {
                failure = error
            }
            groups.increment()
            grouped.increment(by: Int64(group.count))
            for pending in group { pending.finish(failure) }
        }
    }
}
