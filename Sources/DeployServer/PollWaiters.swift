import Synchronization

/// Long polls: a `PollHostCommand` that finds nothing waits here until there may be work for its instance (a
/// deployment was created, another target started, a command expired) or its hold time ends.
///
/// A wait is one continuation in a table; the hold times are kept by one sweep task for all of them (it looks every
/// ``sweepPeriod``, so a hold may end that much late), not a timer and two child tasks per poll: an idle fleet of
/// 10,000 agents begins and ends hundreds of held polls every second.
final class PollWaiters: Sendable {
    /// How often the sweep ends the waits whose time ran out.
    static let sweepPeriod: Duration = .milliseconds(250)

    struct Waiting {
        var continuation: CheckedContinuation<Bool, Never>
        var deadline: ContinuousClock.Instant
    }

    struct State {
        var waiting: [String: [Int: Waiting]] = [:]
        var count = 0
        /// Waits by the sweep period their deadline falls in (entries of waits already resumed are skipped).
        var expiring: [Int64: [(instance: String, id: Int)]] = [:]
        var sweeping = false
        var next = 0
        var closed = false
        /// How often each instance was woken, and every instance at once: a ``Ticket`` compares them.
        var wakes: [String: UInt64] = [:]
        var allWakes: UInt64 = 0
        /// The newest poll of each instance (see ``begin(for:)``).
        var newest: [String: Int] = [:]
        /// Per instance, the last look that found nothing and holds until something changes (see ``isSettled``).
        var settled: [String: Settled] = [:]
        /// Cancelled before they were registered (the registration resumes them at once), with the slot of the cancel.
        var cancelled: [Int: Int64] = [:]

        func ticket(for instance: String) -> Ticket { Ticket(instance: wakes[instance] ?? 0, all: allWakes) }

        mutating func remove(_ instance: String, _ id: Int) -> Waiting? {
            guard let found = waiting[instance]?.removeValue(forKey: id) else { return nil }
            if waiting[instance]?.isEmpty == true { waiting[instance] = nil }
            count -= 1
            return found
        }

        mutating func removeAll(_ instance: String) -> [Waiting] {
            guard let all = waiting.removeValue(forKey: instance) else { return [] }
            count -= all.count
            return Array(all.values)
        }
    }
    let state = Mutex(State())
    let origin = ContinuousClock.now
    private let workChanges: (@Sendable () -> UInt64?)?
    private let externalChanges = Atomic<UInt64>(0)

    /// `workChanges` counts the store's commits that changed what a poll looks at (nil: unknown, every poll looks).
    init(workChanges: (@Sendable () -> UInt64?)? = nil) {
        self.workChanges = workChanges
    }

    /// When a look found nothing that holds: the wakes and the store's changes it was taken at.
    struct Settled: Equatable {
        var ticket: Ticket
        var work: UInt64
    }

    /// What a look taken now compares with later: the instance's wakes and the store's changes; nil when the store's
    /// changes are not counted.
    func mark(for instance: String) -> Settled? {
        guard let work = workChanges?() else { return nil }
        let ticket = self.ticket(for: instance)
        return Settled(ticket: ticket, work: work &+ externalChanges.load(ordering: .acquiring))
    }

    /// Whether the last look of `instance` found nothing that holds (no command waits for its acknowledgement) and
    /// neither a wake nor a commit of deployments, targets or host commands (here or, as the clock saw, by another
    /// process) came since: a look now would find nothing again. An idle fleet's polls then cost no store read.
    func isSettled(_ instance: String, now mark: Settled?) -> Bool {
        guard let mark else { return false }
        return state.withLock { $0.settled[instance] == mark }
    }

    /// Records a look taken at `mark` that found nothing and holds (or, nil, forgets the last one).
    func settle(_ instance: String, at mark: Settled?) {
        state.withLock { $0.settled[instance] = mark }
    }

    /// Another process committed to the store (the server's clock saw it): no settled look holds any more.
    func noteExternalChange() { externalChanges.add(1, ordering: .releasing) }

    /// The wakes an instance has had so far: a poll takes one before it looks for work, and its wait returns at once
    /// if a wake came in between (the completion that made the work committed after the look).
    struct Ticket: Equatable {
        var instance: UInt64
        var all: UInt64
    }

    func ticket(for instance: String) -> Ticket {
        state.withLock { $0.ticket(for: instance) }
    }

    /// A poll of `instance` starts; its number. An agent holds one poll at a time, so a poll of the same instance
    /// still held is one its agent left (killed and restarted, or gone): it is superseded, answers nothing and takes
    /// no command (handed to a connection nobody reads, a command would wait out the acknowledgement window).
    func begin(for instance: String) -> Int {
        let (poll, older) = state.withLock { state -> (Int, [Waiting]) in
            state.next += 1
            state.newest[instance] = state.next
            return (state.next, state.removeAll(instance))
        }
        // Woken, the older polls find they are superseded and answer nothing.
        for waiting in older { waiting.continuation.resume(returning: true) }
        return poll
    }

    /// Whether `poll` is still the newest poll of `instance`.
    func isNewest(_ poll: Int, for instance: String) -> Bool {
        state.withLock { $0.newest[instance] == poll }
    }

    /// How many polls wait now.
    var waitingCount: Int { state.withLock { $0.count } }

    /// The sweep period an instant falls in, counted from this table's creation.
    private func slot(_ instant: ContinuousClock.Instant) -> Int64 {
        func milliseconds(_ duration: Duration) -> Int64 {
            duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        }
        return milliseconds(instant - origin) / max(1, milliseconds(Self.sweepPeriod))
    }

    /// Returns when woken (true), at once when woken since `ticket` or when the task is cancelled, or after `timeout`
    /// (false).
    @discardableResult
    func wait(for instance: String, since ticket: Ticket? = nil, timeout: Duration) async -> Bool {
        let id = state.withLock { state -> Int in
            state.next += 1
            return state.next
        }
        let deadline = ContinuousClock.now + timeout
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let (answerNow, startSweep) = state.withLock { state -> (Bool?, Bool) in
                    if state.closed || state.cancelled.removeValue(forKey: id) != nil { return (true, false) }
                    if let ticket, state.ticket(for: instance) != ticket { return (true, false) }
                    if timeout <= .zero { return (false, false) }
                    state.waiting[instance, default: [:]][id] = Waiting(continuation: continuation, deadline: deadline)
                    state.count += 1
                    // The slot after the deadline's: the sweep ends a wait only once its deadline has passed.
                    state.expiring[slot(deadline) + 1, default: []].append((instance, id))
                    let start = !state.sweeping
                    state.sweeping = true
                    return (nil, start)
                }
                if let answerNow { continuation.resume(returning: answerNow) }
                if startSweep { Task { await self.sweep() } }
            }
        } onCancel: {
            let found = state.withLock { state -> Waiting? in
                if let found = state.remove(instance, id) { return found }
                state.cancelled[id] = slot(.now)
                return nil
            }
            found?.continuation.resume(returning: true)
        }
    }

    /// Ends the waits whose deadline passed, every ``sweepPeriod``, while any wait is held.
    private func sweep() async {
        while true {
            try? await Task.sleep(for: Self.sweepPeriod)
            let now = ContinuousClock.now
            let current = slot(now)
            let (due, more) = state.withLock { state -> ([Waiting], Bool) in
                var due: [Waiting] = []
                for key in state.expiring.keys.filter({ $0 <= current }) {
                    for (instance, id) in state.expiring.removeValue(forKey: key) ?? [] {
                        if let waiting = state.waiting[instance]?[id], waiting.deadline <= now, let found = state.remove(instance, id) {
                            due.append(found)
                        } else if let waiting = state.waiting[instance]?[id] {
                            // Not yet (the slot rounds): the next one.
                            state.expiring[slot(waiting.deadline) + 1, default: []].append((instance, id))
                        }
                    }
                }
                // A cancel that came after its wait had ended is not waited for by anything.
                if !state.cancelled.isEmpty { state.cancelled = state.cancelled.filter { $0.value >= current - 4 } }
                if state.count == 0 {
                    state.expiring.removeAll()
                    state.sweeping = false
                    return (due, false)
                }
                return (due, true)
            }
            for waiting in due { waiting.continuation.resume(returning: false) }
            if !more { return }
        }
    }

    /// Wakes the polls of these instances.
    func wake(_ instances: some Sequence<String>) {
        var resumed: [Waiting] = []
        state.withLock { state in
            for instance in instances {
                state.wakes[instance, default: 0] &+= 1
                resumed += state.removeAll(instance)
            }
        }
        for waiting in resumed { waiting.continuation.resume(returning: true) }
    }

    /// Wakes every poll (a new deployment, an expiry, a change made by another process).
    func wakeAll() {
        let resumed = state.withLock { state -> [Waiting] in
            state.allWakes &+= 1
            let all = state.waiting.values.flatMap(\.values)
            state.waiting.removeAll()
            state.count = 0
            return all
        }
        for waiting in resumed { waiting.continuation.resume(returning: true) }
    }

    /// At shutdown: every held poll answers now, and no new one waits.
    func close() {
        state.withLock { $0.closed = true }
        wakeAll()
    }

    var isClosed: Bool { state.withLock { $0.closed } }
}
