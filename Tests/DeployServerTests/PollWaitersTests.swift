import Foundation
import Testing

@testable import DeployServer

/// Held polls: woken by their instance's progress or a wake of all, ended by their hold time through the one sweep,
/// answered at once when a wake came between the look and the wait, when the poll's task is cancelled, or at
/// shutdown; none is left waiting. A wait answers true when woken (or cancelled, or closed) and false when its hold
/// ran out, so with holds of 30 s a true answer is the proof that it did not wait the hold out (timings are not
/// asserted: the whole test run shares the cooperative pool).
@Suite struct PollWaitersTests {
    /// Polls until `condition` holds (at most 60 s).
    func until(_ condition: () -> Bool) async throws {
        let end = ContinuousClock.now + .seconds(60)
        while !condition(), ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(5)) }
        #expect(condition())
    }

    @Test func aWakeOfItsInstanceEndsTheWaitAndOthersStay() async throws {
        let waiters = PollWaiters()
        let web1 = Task { await waiters.wait(for: "web-1", timeout: .seconds(30)) }
        let web2 = Task { await waiters.wait(for: "web-2", timeout: .seconds(30)) }
        try await until { waiters.waitingCount == 2 }
        waiters.wake(["web-1"])
        #expect(await web1.value)
        #expect(waiters.waitingCount == 1)
        waiters.wakeAll()
        #expect(await web2.value)
        #expect(waiters.waitingCount == 0)
    }

    @Test func theHoldEndsOnTimeThroughTheSweep() async throws {
        let waiters = PollWaiters()
        let started = ContinuousClock.now
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<200 { group.addTask { await waiters.wait(for: "web-\(index)", timeout: .milliseconds(300)) } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - started
        #expect(results.count == 200 && results.allSatisfy { !$0 })
        // Never early.
        #expect(elapsed >= .milliseconds(300))
        #expect(waiters.waitingCount == 0)
    }

    @Test func aWakeBetweenTheLookAndTheWaitIsNotMissed() async throws {
        let waiters = PollWaiters()
        let ticket = waiters.ticket(for: "web-1")
        waiters.wake(["web-1"])
        #expect(await waiters.wait(for: "web-1", since: ticket, timeout: .seconds(30)))
        // A wake of every instance counts too; another instance's does not.
        let second = waiters.ticket(for: "web-1")
        waiters.wake(["web-2"])
        let held = Task { await waiters.wait(for: "web-1", since: second, timeout: .seconds(30)) }
        try await until { waiters.waitingCount == 1 }
        waiters.wakeAll()
        #expect(await held.value)
    }

    @Test func aCancelledPollAnswersAtOnce() async throws {
        let waiters = PollWaiters()
        let held = Task { await waiters.wait(for: "web-1", timeout: .seconds(30)) }
        try await until { waiters.waitingCount == 1 }
        held.cancel()
        #expect(await held.value)
        #expect(waiters.waitingCount == 0)
    }

    @Test func aNewerPollOfTheSameInstanceSupersedesTheHeldOne() async throws {
        let waiters = PollWaiters()
        let first = waiters.begin(for: "web-1")
        let held = Task { await waiters.wait(for: "web-1", timeout: .seconds(30)) }
        try await until { waiters.waitingCount == 1 }
        let second = waiters.begin(for: "web-1")
        #expect(await held.value)
        #expect(!waiters.isNewest(first, for: "web-1"))
        #expect(waiters.isNewest(second, for: "web-1"))
    }

    @Test func closeAnswersEveryHeldPollAndNoneWaitsAfter() async throws {
        let waiters = PollWaiters()
        let held = (0..<50).map { index in Task { await waiters.wait(for: "web-\(index % 5)", timeout: .seconds(30)) } }
        try await until { waiters.waitingCount == 50 }
        waiters.close()
        for task in held { #expect(await task.value) }
        #expect(await waiters.wait(for: "web-1", timeout: .seconds(30)))
    }

    @Test func aSettledLookHoldsUntilAWakeOrAStoreChange() {
        let work = WorkCounter()
        let waiters = PollWaiters(workChanges: { work.value })
        let mark = waiters.mark(for: "web-1")
        #expect(!waiters.isSettled("web-1", now: mark))
        waiters.settle("web-1", at: mark)
        #expect(waiters.isSettled("web-1", now: waiters.mark(for: "web-1")))
        // Another instance's wake leaves it; its own wake, a wake of all, a commit or another process's change end it.
        waiters.wake(["web-2"])
        #expect(waiters.isSettled("web-1", now: waiters.mark(for: "web-1")))
        for change in [{ waiters.wake(["web-1"]) }, { waiters.wakeAll() }, { work.bump() }, { waiters.noteExternalChange() }] {
            waiters.settle("web-1", at: waiters.mark(for: "web-1"))
            #expect(waiters.isSettled("web-1", now: waiters.mark(for: "web-1")))
            change()
            #expect(!waiters.isSettled("web-1", now: waiters.mark(for: "web-1")))
        }
        // Without a count of the store's changes nothing is ever settled.
        let uncounted = PollWaiters()
        uncounted.settle("web-1", at: uncounted.mark(for: "web-1"))
        #expect(!uncounted.isSettled("web-1", now: uncounted.mark(for: "web-1")))
    }
}

final class WorkCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count: UInt64 = 0
    var value: UInt64 { lock.withLock { count } }
    func bump() { lock.withLock { count += 1 } }
}
