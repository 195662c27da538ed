import Testing

@testable import Agent

/// The hook run's transitions, without processes: each test feeds events at chosen times and checks the phase,
/// the actions and the reported code.
@Suite struct HookRunTests {
    /// A run with a 10 s timeout started at 0 and a 5 s kill grace.
    func started() -> HookRun { HookRun(timeout: 10, startedAt: 0, killGrace: 5) }

    let exitZero: Int32 = 0
    let exitOne: Int32 = 1 << 8
    let killedByTerm: Int32 = 15

    @Test func exitWithOutputClosedSucceeds() {
        var run = started()
        #expect(run.handle(.outputClosed, at: 1).isEmpty)
        #expect(run.phase == .running)
        #expect(run.handle(.exited(status: exitZero), at: 1.1).isEmpty)
        #expect(run.ending == .exited(status: 0))
        #expect(run.report(prefix: "Script", heldOutputs: "")?.code == .success)
    }

    @Test func exitThenOutputClosedDrainsFirst() {
        var run = started()
        _ = run.handle(.exited(status: exitOne), at: 1)
        #expect(run.phase == .draining)
        _ = run.handle(.outputClosed, at: 1.05)
        #expect(run.ending == .exited(status: exitOne))
        let report = run.report(prefix: "Script", heldOutputs: "")
        #expect(report?.code == .scriptFailed)
        #expect(report?.message == "Script failed with exit code 1")
    }

    @Test func failedScriptIsNotWaitedForOnceSettled() {
        var run = started()
        _ = run.handle(.exited(status: exitOne), at: 1)
        #expect(run.handle(.clock, at: 1 + HookRun.settle / 2).isEmpty)
        #expect(run.phase == .draining)
        #expect(run.handle(.clock, at: 1.25).isEmpty)
        #expect(run.ending == .exited(status: exitOne))
    }

    @Test func signalIsReportedAsScriptFailed() {
        var run = started()
        _ = run.handle(.outputClosed, at: 1)
        _ = run.handle(.exited(status: killedByTerm), at: 1)
        #expect(run.report(prefix: "Script", heldOutputs: "")?.message == "Script was killed by signal 15")
    }

    @Test func heldOutputIsAnnouncedOnceThenWaitedForUntilClosed() {
        var run = started()
        _ = run.handle(.exited(status: exitZero), at: 2)
        #expect(run.handle(.clock, at: 2.3) == [.announceHolders(secondsLeft: 7)])
        #expect(run.phase == .waitingForHolders)
        #expect(run.handle(.clock, at: 5).isEmpty)
        #expect(run.wake(at: 5) == 5)
        _ = run.handle(.outputClosed, at: 6)
        #expect(run.ending == .exited(status: 0))
    }

    @Test func heldOutputAtTheTimeoutIsOutputsLeftOpen() {
        var run = started()
        _ = run.handle(.exited(status: exitZero), at: 2)
        _ = run.handle(.clock, at: 2.3)
        #expect(run.handle(.clock, at: 10).isEmpty)
        #expect(run.ending == .outputsLeftOpen)
        let report = run.report(prefix: "Script", heldOutputs: "STDOUT")
        #expect(report?.code == .outputsLeftOpen)
        #expect(report?.code.apiCode == .scriptFailed)
        #expect(report?.message.contains("still held its STDOUT when the timeout of 10 s ended the wait") == true)
    }

    @Test func timeoutTerminatesThenKillsAfterTheGrace() {
        var run = started()
        #expect(run.handle(.clock, at: 9.9).isEmpty)
        #expect(run.wake(at: 9.9) < 0.11)
        #expect(run.handle(.clock, at: 10) == [.terminate(.timeout)])
        #expect(run.phase == .terminating(.timeout, since: 10))
        #expect(run.handle(.clock, at: 14.9).isEmpty)
        #expect(run.handle(.clock, at: 15) == [.kill])
        #expect(run.phase == .killing(.timeout))
        #expect(run.handle(.clock, at: 20).isEmpty)
        _ = run.handle(.exited(status: 9), at: 20.1)
        _ = run.handle(.outputClosed, at: 20.1)
        #expect(run.ending == .timedOut)
        #expect(run.report(prefix: "Script", heldOutputs: "")?.message == "Script failed to complete in 10 seconds")
        #expect(run.report(prefix: "Script", heldOutputs: "")?.code == .scriptTimedOut)
    }

    @Test func scriptThatStopsOnTermEndsTimedOutWithoutKill() {
        var run = started()
        _ = run.handle(.clock, at: 10)
        _ = run.handle(.exited(status: killedByTerm), at: 10.5)
        #expect(run.phase == .terminating(.timeout, since: 10))
        _ = run.handle(.outputClosed, at: 10.5)
        #expect(run.ending == .timedOut)
    }

    /// A script that traps SIGTERM and exits 0 while a process outside its group holds its output still ends, as
    /// timed out, once its output has had time to drain.
    @Test func heldOutputAfterTheTimeoutDoesNotHoldTheRunForever() {
        var run = started()
        _ = run.handle(.clock, at: 10)
        _ = run.handle(.exited(status: exitZero), at: 11)
        #expect(run.handle(.clock, at: 11.1).isEmpty)
        #expect(run.ending == nil)
        _ = run.handle(.clock, at: 11.25)
        #expect(run.ending == .timedOut)
    }

    @Test func exitAtTheDeadlineWithHeldOutputIsNotATimeout() {
        var run = started()
        _ = run.handle(.exited(status: exitZero), at: 10)
        #expect(run.ending == .outputsLeftOpen)
        var failed = started()
        _ = failed.handle(.exited(status: exitOne), at: 10)
        #expect(failed.ending == .exited(status: exitOne))
    }

    @Test func logFailureWhileRunningStopsTheScript() {
        var run = started()
        #expect(run.handle(.logFailed("No space left on device"), at: 3) == [.terminate(.logFailure("No space left on device"))])
        #expect(run.handle(.logFailed("No space left on device"), at: 3.1).isEmpty)
        #expect(run.handle(.clock, at: 8) == [.kill])
        _ = run.handle(.exited(status: 9), at: 8.1)
        _ = run.handle(.outputClosed, at: 8.1)
        #expect(run.ending == .logFailure("No space left on device"))
        let report = run.report(prefix: "Script", heldOutputs: "")
        #expect(report?.code == .unknownError)
        #expect(report?.message == "Script was stopped: its output cannot be logged: No space left on device")
    }

    @Test func logFailureAfterTheExitEndsAtOnce() {
        var run = started()
        _ = run.handle(.exited(status: exitZero), at: 1)
        _ = run.handle(.clock, at: 1.5)
        #expect(run.phase == .waitingForHolders)
        #expect(run.handle(.logFailed("disk full"), at: 2).isEmpty)
        #expect(run.ending == .logFailure("disk full"))
    }

    @Test func logFailureDuringATimeoutIsWhatIsReported() {
        var run = started()
        _ = run.handle(.clock, at: 10)
        _ = run.handle(.logFailed("disk full"), at: 11)
        #expect(run.phase == .terminating(.logFailure("disk full"), since: 10))
        _ = run.handle(.exited(status: killedByTerm), at: 11)
        _ = run.handle(.outputClosed, at: 11)
        #expect(run.ending == .logFailure("disk full"))
    }

    @Test func eventsAfterTheEndChangeNothing() {
        var run = started()
        _ = run.handle(.outputClosed, at: 1)
        _ = run.handle(.exited(status: exitZero), at: 1)
        let ended = run
        #expect(run.handle(.clock, at: 100).isEmpty)
        #expect(run.handle(.logFailed("late"), at: 100).isEmpty)
        #expect(run.handle(.exited(status: exitOne), at: 100).isEmpty)
        #expect(run == ended)
        #expect(run.wake(at: 100) == 0)
    }

    @Test func noReportBeforeTheEnd() {
        var run = started()
        _ = run.handle(.exited(status: exitZero), at: 1)
        #expect(run.report(prefix: "Script", heldOutputs: "") == nil)
    }
}
