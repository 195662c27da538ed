import Foundation
import Synchronization
import Testing

@testable import DeployServer

/// Issue 22, item 16: the blocking executor refuses work once shut down (an error, never a caller that waits for
/// ever), refuses it when its queue is full, and runs what it took.
@Suite struct BlockingExecutorTests {
    @Test func workRunsOnTheExecutorsOwnThreads() async throws {
        let executor = BlockingExecutor(threads: 2, name: "test-run")
        defer { executor.shutdown() }
        #expect(try await executor.perform { executor.ownsCurrentThread })
        #expect(!executor.ownsCurrentThread)
    }

    @Test func workAfterShutdownIsRefusedWithAnError() async throws {
        let executor = BlockingExecutor(threads: 1, name: "test-stop")
        executor.shutdown()
        await #expect(throws: BlockingExecutor.Refusal.self) { try await executor.perform { 1 } }
        #expect(executor.refusedCount == 1)
    }

    @Test func aFullQueueRefusesAtOnceAndCountsIt() async throws {
        let executor = BlockingExecutor(threads: 1, name: "test-full", maxQueue: 2)
        defer { executor.shutdown() }
        // One job holds the only thread; two wait in the queue; the fourth is refused.
        let hold = try await ThreadHold(executor)
        let queued = (0..<2).map { _ in Task { try await executor.perform { 1 } } }
        while executor.queueLength < 2 { try await Task.sleep(for: .milliseconds(5)) }
        await #expect(throws: BlockingExecutor.Refusal.self) { try await executor.perform { 1 } }
        try await hold.release()
        for task in queued { #expect(try await task.value == 1) }
    }
}

/// A job that holds an executor's only thread until ``release()``, so that what comes next queues. It never blocks
/// a thread of the cooperative pool (tests run in parallel on it: two blocked waits there would starve it).
struct ThreadHold {
    let gate = DispatchSemaphore(value: 0)
    let job: Task<Void, any Error>

    init(_ executor: BlockingExecutor) async throws {
        let gate = self.gate
        let started = Mutex(false)
        job = Task {
            try await executor.perform {
                started.withLock { $0 = true }
                gate.wait()
            }
        }
        while !started.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(2)) }
    }

    func release() async throws {
        gate.signal()
        try await job.value
    }
}
