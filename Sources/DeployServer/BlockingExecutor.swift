import Foundation

/// A task executor with its own threads, for work that blocks (SQLite calls, which can wait up to the busy timeout
/// for another process's write lock). Running them here keeps Swift's cooperative pool, which has one thread per
/// core, free for the requests that are not waiting (swift-nio's advice for blocking work, as a `TaskExecutor`).
final class BlockingExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0
    private var stopping = false

    /// Starts `threads` threads named `name-N`; they run until ``shutdown()``.
    init(threads: Int, name: String) {
        for index in 0..<max(1, threads) {
            let thread = Thread { self.serve() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the threads finish the jobs already queued, then end.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func serve() {
        while true {
            condition.lock()
            while head == jobs.count, !stopping { condition.wait() }
            if head == jobs.count {
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
