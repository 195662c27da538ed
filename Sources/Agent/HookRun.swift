/// One hook run as states and transitions, with no processes in it. ``HookRunner`` tells it what happened (the
/// script exited, its output closed, the log failed, time passed) and does the ``Action``s it answers; once the
/// run has ``Phase/ended(_:)``, ``report(prefix:heldOutputs:)`` is the one place that turns the ending into the
/// error code and the message the agent reports.
///
/// | phase | event | next phase | action |
/// |---|---|---|---|
/// | running | exited, output closed | ended(exited) | |
/// | running | exited, output open | draining | |
/// | running | deadline | terminating(timeout) | terminate |
/// | running, draining | log failed | terminating(log) / ended(log) | terminate / — |
/// | draining | output closed | ended(exited) | |
/// | draining | settle passed, status ≠ 0 | ended(exited) | |
/// | draining | settle passed, status 0 | waitingForHolders | announceHolders |
/// | draining, waitingForHolders | deadline | ended(outputsLeftOpen) (status 0) | |
/// | waitingForHolders | output closed | ended(exited) | |
/// | terminating | grace passed | killing | kill |
/// | terminating, killing | exited and (output closed or settle passed) | ended(timedOut / log) | |
struct HookRun: Sendable, Equatable {
    enum Phase: Sendable, Equatable {
        /// The script runs and its timeout has not passed.
        case running
        /// The script has exited; its output is read to its end, which comes within ``HookRun/settle`` unless
        /// another process holds it.
        case draining
        /// The script exited with 0 and another process still holds its output: that is waited for until the
        /// timeout (AWS's agent does the same), and said at once.
        case waitingForHolders
        /// SIGTERM went to the script's process group at `since`; SIGKILL follows after the kill grace.
        case terminating(Stop, since: Double)
        /// SIGKILL went to the group; what is left is the script's exit and its output's end.
        case killing(Stop)
        case ended(Ending)
    }

    /// Why the run is being stopped.
    enum Stop: Sendable, Equatable {
        case timeout
        /// The output can no longer be kept (a full disk), so the event fails and the script is stopped now.
        case logFailure(String)
    }

    /// How the run ended.
    enum Ending: Sendable, Equatable {
        /// The script exited (the raw wait status) and nothing held its output, or it failed and is not waited for.
        case exited(status: Int32)
        /// The script exited with 0, but another process held its output when the timeout ended the wait.
        case outputsLeftOpen
        case timedOut
        case logFailure(String)
    }

    enum Event: Sendable, Equatable {
        /// The script exited with this raw wait status.
        case exited(status: Int32)
        /// Every output pipe reached its end.
        case outputClosed
        case logFailed(String)
        /// Time passed: deadlines are looked at.
        case clock
    }

    enum Action: Sendable, Equatable {
        /// Say who holds the output of a script that has exited with 0, and how long the wait can last.
        case announceHolders(secondsLeft: Int)
        /// SIGTERM to the script's group (and, on a timeout, to its processes that left the group).
        case terminate(Stop)
        /// SIGKILL to the group and to the processes that left it.
        case kill
    }

    /// How long after the script's exit its output must have reached its end unless another process holds it.
    static let settle = 0.2

    let timeout: Int
    let deadline: Double
    let killGrace: Double
    private(set) var phase: Phase = .running
    private(set) var exitStatus: Int32?
    private(set) var exitedAt: Double?
    private(set) var outputOpen = true

    init(timeout: Int, startedAt: Double, killGrace: Double) {
        self.timeout = timeout
        self.deadline = startedAt + Double(timeout)
        self.killGrace = killGrace
    }

    var ending: Ending? {
        if case .ended(let ending) = phase { return ending }
        return nil
    }

    /// Takes one event at `now` and answers what to do. Events after the end change nothing.
    mutating func handle(_ event: Event, at now: Double) -> [Action] {
        switch event {
        case .exited(let status):
            guard exitStatus == nil else { return [] }
            exitStatus = status
            exitedAt = now
            if phase == .running { phase = .draining }
        case .outputClosed:
            outputOpen = false
        case .logFailed(let reason):
            switch phase {
            case .running:
                phase = .terminating(.logFailure(reason), since: now)
                return [.terminate(.logFailure(reason))]
            case .draining, .waitingForHolders:
                phase = .ended(.logFailure(reason))
            case .terminating(.timeout, let since):
                phase = .terminating(.logFailure(reason), since: since)
            case .killing(.timeout):
                phase = .killing(.logFailure(reason))
            case .terminating(.logFailure, _), .killing(.logFailure), .ended:
                break
            }
            return []
        case .clock:
            break
        }
        return advance(at: now)
    }

    private func settled(_ now: Double) -> Bool {
        exitedAt.map { now - $0 >= Self.settle } ?? false
    }

    /// The transitions that depend on what is known and on the time.
    private mutating func advance(at now: Double) -> [Action] {
        switch phase {
        case .running:
            if now >= deadline {
                phase = .terminating(.timeout, since: now)
                return [.terminate(.timeout)]
            }
        case .draining:
            let status = exitStatus ?? 0
            if !outputOpen {
                phase = .ended(.exited(status: status))
            } else if now >= deadline {
                phase = .ended(status == 0 ? .outputsLeftOpen : .exited(status: status))
            } else if settled(now) {
                // A failed script is reported at once; a background process holding its output is not waited for.
                guard status == 0 else {
                    phase = .ended(.exited(status: status))
                    return []
                }
                phase = .waitingForHolders
                return [.announceHolders(secondsLeft: Int(deadline - now))]
            }
        case .waitingForHolders:
            if !outputOpen {
                phase = .ended(.exited(status: 0))
            } else if now >= deadline {
                phase = .ended(.outputsLeftOpen)
            }
        case .terminating(let stop, let since):
            if exitStatus != nil, !outputOpen || settled(now) {
                phase = .ended(stop.ending)
            } else if now - since >= killGrace {
                phase = .killing(stop)
                return [.kill]
            }
        case .killing(let stop):
            if exitStatus != nil, !outputOpen || settled(now) { phase = .ended(stop.ending) }
        case .ended:
            break
        }
        return []
    }

    /// Seconds until the next transition that only time can make (the caller waits at most that long).
    func wake(at now: Double) -> Double {
        let settleEnds = exitedAt.map { $0 + Self.settle - now } ?? .infinity
        switch phase {
        case .running, .waitingForHolders: return deadline - now
        case .draining: return min(settleEnds, deadline - now)
        case .terminating(_, let since): return min(since + killGrace - now, settleEnds)
        case .killing: return settleEnds
        case .ended: return 0
        }
    }

    /// The error code and the message for the ending; `prefix` names the script (and its user), `heldOutputs`
    /// names the outputs still held ("STDOUT and STDERR"). `nil` before the end.
    func report(prefix: String, heldOutputs: String) -> (code: ScriptErrorCode, message: String)? {
        switch ending {
        case nil:
            return nil
        case .logFailure(let reason):
            return (.unknownError, "\(prefix) was stopped: its output cannot be logged: \(reason)")
        case .timedOut:
            return (.scriptTimedOut, "\(prefix) failed to complete in \(timeout) seconds")
        case .outputsLeftOpen:
            return (
                .outputsLeftOpen,
                "\(prefix) exited with code 0 but a background process it started still held its \(heldOutputs) when the timeout of \(timeout) s ended the wait. Redirect that process's output (cmd > /dev/null 2>&1 &) or run it as a service."
            )
        case .exited(let raw):
            if raw & 0x7f != 0 { return (.scriptFailed, "\(prefix) was killed by signal \(raw & 0x7f)") }
            let code = (raw >> 8) & 0xff
            if code != 0 { return (.scriptFailed, "\(prefix) failed with exit code \(code)") }
            return (.success, "Succeeded")
        }
    }
}

extension HookRun.Stop {
    fileprivate var ending: HookRun.Ending {
        switch self {
        case .timeout: return .timedOut
        case .logFailure(let reason): return .logFailure(reason)
        }
    }
}
