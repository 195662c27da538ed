import Foundation

/// A task executor with its own threads, for work that blocks (SQLite calls, which can wait up to the busy timeout
/// for another process's write lock; reading and joining object files). Running them here keeps Swift's cooperative
/// pool, which has one thread per core, and NIO's event loops free for the requests that are not waiting (swift-nio's
/// advice for blocking work, as a `TaskExecutor`).
///
/// Work enters through ``perform(_:)``, which refuses it with ``Refusal`` once the executor is shut down or when
/// ``maxQueue`` jobs already wait: a caller gets an error at once, never a wait that does not end. The queue's length
/// and the refusals are in `/metrics`.
final class BlockingExecutor: TaskExecutor, @unchecked Sendable {
    /// Why work was not taken.
    struct Refusal: Error, CustomStringConvertible {
        var executor: String
        var shutDown: Bool
        var description: String {
            shutDown
                ? "the server is shutting down (\(executor) takes no new work)"
                : "the server is busy (\(executor) has its queue full); retry shortly"
        }
    }

    let name: String
    let maxQueue: Int
    private let onRefusal: @Sendable () -> Void
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0
    private var stopping = false
    private var running = 0
    private var refused = 0
    private var threadIDs: Set<pthread_t> = []

    /// Starts `threads` threads named `name-N`; they run until ``shutdown()``. `onRefusal` counts each refused job
    /// (a metric).
    init(threads: Int, name: String, maxQueue: Int = 10_000, onRefusal: @escaping @Sendable () -> Void = {}) {
        self.name = name
        self.maxQueue = maxQueue
        self.onRefusal = onRefusal
        for index in 0..<max(1, threads) {
            let thread = Thread { self.serve() }
            thread.name = "\(name)-\(index)"
            running += 1
            thread.start()
        }
    }

    /// Runs `body` on this executor's threads; refused (``Refusal``) after ``shutdown()`` or with a full queue.
    func perform<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try admit()
        return try await withTaskExecutorPreference(self) { try await body() }
    }

    private func admit() throws(Refusal) {
        condition.lock()
        defer { condition.unlock() }
        if stopping || jobs.count - head >= maxQueue {
            refused += 1
            onRefusal()
            throw Refusal(executor: name, shutDown: stopping)
        }
    }

    var queueLength: Int {
        condition.lock()
        defer { condition.unlock() }
        return jobs.count - head
    }

    var refusedCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return refused
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        if running == 0 {
            // Admitted before the shutdown, enqueued after the threads ended (a continuation of work in flight):
            // it still runs, on a thread of its own, so its caller never waits for ever.
            condition.unlock()
            let executor = asUnownedTaskExecutor()
            Thread { job.runSynchronously(on: executor) }.start()
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the threads finish the jobs already queued, then end; new work is refused from now on.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// Whether the caller runs on one of this executor's threads.
    var ownsCurrentThread: Bool {
        condition.lock()
        defer { condition.unlock() }
        return threadIDs.contains(pthread_self())
    }

    private func serve() {
        condition.lock()
        threadIDs.insert(pthread_self())
        condition.unlock()
        while true {
            condition.lock()
            while head == jobs.count, !stopping { condition.wait() }
            if head == jobs.count {
                running -= 1
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 1024, head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
