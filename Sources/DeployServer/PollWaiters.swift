import Synchronization

/// Long polls: a `PollHostCommand` that finds nothing waits here until there may be work for its instance (a
/// deployment was created, another target started, a command expired) or its hold time ends.
final class PollWaiters: Sendable {
    struct State {
        var waiting: [String: [Int: CheckedContinuation<Void, Never>]] = [:]
        /// Waits whose time ran out before their continuation was registered.
        var finished: Set<Int> = []
        /// Waits whose continuation was registered (and perhaps already resumed by a wake).
        var registered: Set<Int> = []
        var next = 0
        var closed = false
        /// How often each instance was woken, and every instance at once: a ``Ticket`` compares them.
        var wakes: [String: UInt64] = [:]
        var allWakes: UInt64 = 0
        /// The newest poll of each instance (see ``begin(for:)``).
        var newest: [String: Int] = [:]

        func ticket(for instance: String) -> Ticket { Ticket(instance: wakes[instance] ?? 0, all: allWakes) }
    }
    let state = Mutex(State())

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
        let (poll, older) = state.withLock { state -> (Int, [CheckedContinuation<Void, Never>]) in
            state.next += 1
            state.newest[instance] = state.next
            return (state.next, state.waiting.removeValue(forKey: instance).map { Array($0.values) } ?? [])
        }
        // Woken, the older polls find they are superseded and answer nothing.
        for continuation in older { continuation.resume() }
        return poll
    }

    /// Whether `poll` is still the newest poll of `instance`.
    func isNewest(_ poll: Int, for instance: String) -> Bool {
        state.withLock { $0.newest[instance] == poll }
    }

    /// Returns when woken (true), at once when woken since `ticket`, or after `timeout` (false).
    @discardableResult
    func wait(for instance: String, since ticket: Ticket? = nil, timeout: Duration) async -> Bool {
        let id = state.withLock { state -> Int in
            state.next += 1
            return state.next
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = self.state.withLock { state -> Bool in
                        if state.closed || state.finished.remove(id) != nil { return true }
                        if let ticket, state.ticket(for: instance) != ticket { return true }
                        state.registered.insert(id)
                        state.waiting[instance, default: [:]][id] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let woken = await group.next() ?? false
            self.resume(instance: instance, id: id)
            group.cancelAll()
            return woken
        }
    }

    private func resume(instance: String, id: Int) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            let wasRegistered = state.registered.remove(id) != nil
            if let found = state.waiting[instance]?.removeValue(forKey: id) {
                if state.waiting[instance]?.isEmpty == true { state.waiting[instance] = nil }
                return found
            }
            // Not registered yet: the registration will see this and return at once. Registered and gone: a wake
            // already resumed it.
            if !wasRegistered { state.finished.insert(id) }
            return nil
        }
        continuation?.resume()
    }

    /// Wakes the polls of these instances.
    func wake(_ instances: some Sequence<String>) {
        var resumed: [CheckedContinuation<Void, Never>] = []
        state.withLock { state in
            for instance in instances {
                state.wakes[instance, default: 0] &+= 1
                if let waiting = state.waiting.removeValue(forKey: instance) { resumed += waiting.values }
            }
        }
        for continuation in resumed { continuation.resume() }
    }

    /// Wakes every poll (a new deployment, an expiry, a change made by another process).
    func wakeAll() {
        let resumed = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.allWakes &+= 1
            let all = state.waiting.values.flatMap(\.values)
            state.waiting.removeAll()
            return all
        }
        for continuation in resumed { continuation.resume() }
    }

    /// At shutdown: every held poll answers now, and no new one waits.
    func close() {
        state.withLock { $0.closed = true }
        wakeAll()
    }

    var isClosed: Bool { state.withLock { $0.closed } }
}
