import AppSpec
import CAgentSupport
import DeployModel
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How a script or an agent step ended, as the agent reports it: the API's `LifecycleErrorCode` values plus
/// `OutputsLeftOpen`, which the AWS agent reports but the API model does not list (``apiCode`` maps it).
public enum ScriptErrorCode: String, Sendable, Codable {
    case success = "Success"
    case scriptMissing = "ScriptMissing"
    case scriptNotExecutable = "ScriptNotExecutable"
    case scriptTimedOut = "ScriptTimedOut"
    case scriptFailed = "ScriptFailed"
    case outputsLeftOpen = "OutputsLeftOpen"
    case unknownError = "UnknownError"

    /// The code the API carries: `OutputsLeftOpen` is reported as `ScriptFailed` (with its own message).
    public var apiCode: LifecycleErrorCode {
        self == .outputsLeftOpen ? .scriptFailed : LifecycleErrorCode(rawValue: rawValue) ?? .unknownError
    }
}

/// How one script (or one event) ended: the code, the script, a one-line message and the log tail.
public struct ScriptOutcome: Sendable, Equatable {
    public var code: ScriptErrorCode
    public var scriptName: String
    public var message: String
    public var logTail: String

    public var succeeded: Bool { code == .success }
}

/// A user a hook runs as, from the passwd database.
public struct RunAsUser: Sendable, Equatable {
    public var name: String
    public var uid: uid_t
    public var gid: gid_t
    public var home: String
    public var shell: String

    public static func lookup(uid: uid_t) -> RunAsUser? {
        guard let entry = getpwuid(uid) else { return nil }
        return lookup(String(cString: entry.pointee.pw_name))
    }

    public static func lookup(_ name: String) -> RunAsUser? {
        guard let entry = getpwnam(name) else { return nil }
        return RunAsUser(
            name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid, home: String(cString: entry.pointee.pw_dir),
            shell: String(cString: entry.pointee.pw_shell))
    }
}

/// Runs hook scripts: directly (no shell interpolation), in a new session so the whole process group can be
/// killed, as the `runas` user through util-linux `setpriv`, with output streamed line by line to the script log.
public struct HookRunner: Sendable {
    /// After SIGTERM to the group on timeout, how long before SIGKILL.
    public var killGrace: TimeInterval
    /// The longest line kept whole; longer output is split into lines of this size, so memory stays bounded.
    public static let maxLineBytes = 64 * 1024

    /// Supervises each hook's whole process tree (set by the `deployctl` binary after ``becomeSubreaper()``): on
    /// timeout every descendant is killed, also those that left the process group; if deployctl dies, a watchdog
    /// kills the hook's process group (a deliberately daemonized process, in its own session, survives).
    public var supervise: Bool

    public init(killGrace: TimeInterval = 5, supervise: Bool = false) {
        self.supervise = supervise
        self.killGrace = killGrace
    }

    /// Runs one script of `archiveRoot` and returns how it ended. Never throws: every failure is an outcome.
    /// `onWaiting` is told when the script has exited but a background process still holds its output (the
    /// printer and the live view show it).
    public func run(
        _ script: HookScript, archiveRoot: String, environment: [String: String], log: ScriptLog, onWaiting: ((String) -> Void)? = nil
    ) -> ScriptOutcome {
        let location = script.location
        let relative = location.split(separator: "/").filter { $0 != "." }.map(String.init).joinedPath()
        let path = archiveRoot + "/" + relative
        log.write("Script - \(location)")
        log.resetTail()
        func outcome(_ code: ScriptErrorCode, _ message: String) -> ScriptOutcome {
            ScriptOutcome(code: code, scriptName: location, message: message, logTail: log.tail)
        }
        // The script is reached inside the revision only: a location that leads out of it (through '..' or a
        // symlink) is never made executable nor run.
        let revision = ConfinedRoot(path: archiveRoot, policy: .beneath)
        let fd: Int32
        do throws(ConfinedRoot.Refusal) {
            let parent = try revision.openParent(relative)
            defer { close(parent.fd) }
            // A symlink to another file inside the revision is fine; it is resolved beneath the revision too.
            fd = deployctl_openat2(parent.fd, parent.name, deployctl_o_path(), 0, deployctl_resolve_beneath())
            if fd < 0 { throw revision.refusal(relative, errno) }
        } catch {
            if error.missing { return outcome(.scriptMissing, "Script does not exist at specified location: \(path)") }
            return outcome(.scriptMissing, "Script at specified location: \(location) cannot be used: \(error.reason)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, let resolved = ConfinedRoot.realPath(of: fd) else {
            return outcome(.scriptMissing, "Script does not exist at specified location: \(path)")
        }
        if info.st_mode & 0o111 == 0 {
            log.write("[warning] \(location) is not executable; making it executable")
            guard chmod("/proc/self/fd/\(fd)", info.st_mode & 0o7777 | 0o111) == 0 else {
                return outcome(.scriptNotExecutable, "Unable to make the script at \(location) executable: \(String(cString: strerror(errno)))")
            }
        }
        var env = environment
        var arguments: [String] = Self.hasShebang(resolved) ? [resolved] : ["/bin/sh", resolved]
        let prefix = script.runas.map { "Script at specified location: \(location) run as user \($0)" } ?? "Script at specified location: \(location)"
        if let name = script.runas {
            guard let user = RunAsUser.lookup(name) else {
                return outcome(.unknownError, "\(prefix): the user '\(name)' does not exist on this host")
            }
            if user.uid != geteuid() {
                guard geteuid() == 0 else {
                    return outcome(.unknownError, "\(prefix): switching to another user needs deployctl to run as root")
                }
                arguments = ["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups", "--"] + arguments
            }
            env["HOME"] = user.home
            env["USER"] = user.name
            env["LOGNAME"] = user.name
            env["SHELL"] = user.shell
        }
        do {
            return try execute(
                arguments, directory: archiveRoot, environment: env, timeout: script.timeout, log: log, prefix: prefix, location: location,
                onWaiting: onWaiting)
        } catch {
            return outcome(.unknownError, "\(prefix) could not be started: \(error)")
        }
    }

    /// Makes this process the subreaper of its descendants (PR_SET_CHILD_SUBREAPER), so hook processes that leave
    /// their group are re-parented here and can be found; call once, before hooks run with `supervise`.
    public static func becomeSubreaper() { _ = deployctl_become_subreaper() }

    /// Kills (with `signal`) every descendant of the hook outside its process group; returns what it signalled.
    func killEscaped(_ pid: pid_t, startedAt start: UInt64?, watchdog: pid_t, _ signal: Int32) -> String? {
        guard supervise, let start else { return nil }
        let tree = ProcessTree.snapshot()
        let escaped = tree.descendants(of: pid, startedAt: start, excluding: [watchdog]).filter { getpgid($0) != pid }
        guard !escaped.isEmpty else { return nil }
        for victim in escaped { kill(victim, signal) }
        return tree.describe(escaped)
    }

    static func hasShebang(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var start: (UInt8, UInt8) = (0, 0)
        return withUnsafeMutableBytes(of: &start) { read(fd, $0.baseAddress, 2) } == 2 && start == (UInt8(ascii: "#"), UInt8(ascii: "!"))
    }

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// The script's process and the read ends of its output pipes.
    private struct SpawnedScript {
        var pid: pid_t
        var stdout: Int32
        var stderr: Int32
    }

    /// Starts the script in its own session with stdin on /dev/null, its output on two pipes and no other file.
    private static func spawn(_ arguments: [String], directory: String, environment: [String: String]) throws -> SpawnedScript {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard deployctl_pipe_cloexec(&outPipe) == 0, deployctl_pipe_cloexec(&errPipe) == 0 else {
            throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        deployctl_spawn_addchdir(&actions, directory)
        // Nothing but stdin, stdout and stderr reaches the hook: a daemon it starts must not hold the agent's files.
        deployctl_spawn_addclosefrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // POSIX_SPAWN_SETSID (0x80): a new session, so the script leads its own process group.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | 0x80))

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        guard status == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw SpawnError(description: String(cString: strerror(status)))
        }
        return SpawnedScript(pid: pid, stdout: outPipe[0], stderr: errPipe[0])
    }

    /// Runs the script and drives its ``HookRun``: reads its output into the log, turns what happens into events,
    /// and does the actions the run answers, until the run has ended.
    private func execute(
        _ arguments: [String], directory: String, environment: [String: String], timeout: Int, log: ScriptLog, prefix: String,
        location: String, onWaiting: ((String) -> Void)?
    ) throws -> ScriptOutcome {
        let script = try Self.spawn(arguments, directory: directory, environment: environment)
        let pid = script.pid
        defer {
            close(script.stdout)
            close(script.stderr)
        }
        let group = SupervisedScript(runner: self, pid: pid, log: log, timeout: timeout)
        defer { group.release() }
        var run = HookRun(timeout: timeout, startedAt: Self.now(), killGrace: killGrace)
        var streams = [OutputStream(fd: script.stdout, label: "[stdout]"), OutputStream(fd: script.stderr, label: "[stderr]")]
        func perform(_ actions: [HookRun.Action]) {
            for action in actions {
                switch action {
                case .announceHolders(let secondsLeft):
                    // AWS's outcome: wait for the holders until the timeout. But say at once who holds what, and how
                    // to end the wait.
                    let note = Self.holdersNote(streams.filter { !$0.closed }, secondsLeft: secondsLeft)
                    log.write("[deployctl] " + note)
                    onWaiting?(note)
                case .terminate, .kill:
                    group.signal(action)
                }
            }
        }

        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        // The script's exit wakes the poll below (pidfd), so no event waits on a sleep for it.
        let exitFD = deployctl_pidfd_open(pid)
        defer { if exitFD >= 0 { close(exitFD) } }
        while run.ending == nil {
            let open = streams.indices.filter { !streams[$0].closed }
            var fds = open.map { pollfd(fd: streams[$0].fd, events: Int16(POLLIN), revents: 0) }
            if run.exitStatus == nil, exitFD >= 0 { fds.append(pollfd(fd: exitFD, events: Int16(POLLIN), revents: 0)) }
            var wake = run.wake(at: Self.now())
            if run.exitStatus == nil, exitFD < 0 { wake = min(wake, 0.05) }
            let waitMs = Int32(max(0, min(wake, 1)) * 1000) + 1
            let ready = fds.isEmpty ? Int32(0) : poll(&fds, nfds_t(fds.count), waitMs)
            if fds.isEmpty { usleep(UInt32(waitMs) * 1000) }
            if ready > 0 {
                for (slot, index) in open.enumerated() where fds[slot].revents != 0 {
                    let count = buffer.withUnsafeMutableBytes { read(streams[index].fd, $0.baseAddress, $0.count) }
                    if count <= 0 {
                        streams[index].finish(log)
                    } else {
                        streams[index].consume(buffer[0..<count], log)
                    }
                }
                if run.outputOpen, streams.allSatisfy(\.closed) { perform(run.handle(.outputClosed, at: Self.now())) }
            }
            if run.exitStatus == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid { perform(run.handle(.exited(status: raw), at: Self.now())) }
            }
            if let failure = log.failure { perform(run.handle(.logFailed(failure), at: Self.now())) }
            perform(run.handle(.clock, at: Self.now()))
        }
        group.end(run.ending, exited: run.exitStatus != nil)
        for index in streams.indices { streams[index].flush(log) }
        let heldOutputs = streams.filter { !$0.closed }.map { $0.label == "[stdout]" ? "STDOUT" : "STDERR" }.joined(separator: " and ")
        if run.ending == .outputsLeftOpen {
            log.write(
                "[deployctl] the timeout of \(timeout) s ended the wait: a background process still holds the script's \(heldOutputs); it is left running"
            )
        }
        let report = run.report(prefix: prefix, heldOutputs: heldOutputs) ?? (.unknownError, "\(prefix) ended in an unknown state")
        return ScriptOutcome(code: report.code, scriptName: location, message: report.message, logTail: log.tail)
    }

    /// Who holds which output of a script that exited with 0, and how to end the wait.
    private static func holdersNote(_ held: [OutputStream], secondsLeft: Int) -> String {
        let which = held.map { $0.label == "[stdout]" ? "stdout" : "stderr" }.joined(separator: " and ")
        let holders = OutputHolders.find(held.map(\.fd))
        let who = holders.isEmpty ? "a background process" : holders.map { "PID \($0.pid) (\($0.command))" }.joined(separator: ", ")
        return
            "the script exited with code 0 but \(who) still holds its \(which): waiting until it closes it, at most until the timeout (\(secondsLeft) s left). Redirect that process's output (cmd > /dev/null 2>&1 &) to end the wait."
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}

/// A started script's process group under supervision: the watchdog that outlives deployctl, and the signals a
/// ``HookRun`` asks for (with ``HookRunner/supervise``, also to the script's processes that left its group).
private struct SupervisedScript {
    let runner: HookRunner
    let pid: pid_t
    let log: ScriptLog
    let timeout: Int
    let watchdog: pid_t
    let startTime: UInt64?

    init(runner: HookRunner, pid: pid_t, log: ScriptLog, timeout: Int) {
        self.runner = runner
        self.pid = pid
        self.log = log
        self.timeout = timeout
        // Should deployctl die (kill -9), the hook's group must not run on unsupervised.
        watchdog = runner.supervise ? deployctl_spawn_watchdog(pid, Int32(runner.killGrace)) : -1
        startTime = runner.supervise ? ProcessTree.startTime(of: pid) : nil
    }

    func signal(_ action: HookRun.Action) {
        switch action {
        case .terminate(.timeout):
            log.write("[deployctl] timeout of \(timeout) s reached: sending SIGTERM to the script's process group")
            if let escaped = runner.killEscaped(pid, startedAt: startTime, watchdog: watchdog, SIGTERM) {
                log.write("[deployctl] also sent SIGTERM to processes of the script outside its process group: \(escaped)")
            }
            kill(-pid, SIGTERM)
        case .terminate(.logFailure):
            kill(-pid, SIGTERM)
        case .kill:
            log.write("[deployctl] the process group did not stop within \(Int(runner.killGrace)) s: sending SIGKILL")
            if let escaped = runner.killEscaped(pid, startedAt: startTime, watchdog: watchdog, SIGKILL) {
                log.write("[deployctl] SIGKILL also to: \(escaped)")
            }
            kill(-pid, SIGKILL)
        case .announceHolders:
            break
        }
    }

    /// After the run: a stopped script's group (and escaped processes) is killed, and the script is reaped.
    func end(_ ending: HookRun.Ending?, exited: Bool) {
        switch ending {
        case .logFailure:
            kill(-pid, SIGKILL)
        case .timedOut:
            if let escaped = runner.killEscaped(pid, startedAt: startTime, watchdog: watchdog, SIGKILL) {
                log.write("[deployctl] killed what was left of the script: \(escaped)")
            }
            kill(-pid, SIGKILL)
        case .outputsLeftOpen, .exited, nil:
            break
        }
        if !exited {
            var raw: Int32 = 0
            waitpid(pid, &raw, 0)
        }
    }

    /// Ends the watchdog, and reaps orphans of earlier hooks adopted as their subreaper that have ended since.
    func release() {
        if watchdog > 0 {
            kill(watchdog, SIGKILL)
            waitpid(watchdog, nil, 0)
        }
        if runner.supervise { while waitpid(-1, nil, WNOHANG) > 0 {} }
    }
}

/// One output pipe: bytes in, whole lines out to the log, at most `maxLineBytes` held at a time.
private struct OutputStream {
    let fd: Int32
    let label: String
    var pending: [UInt8] = []
    var closed = false

    init(fd: Int32, label: String) {
        self.fd = fd
        self.label = label
    }

    mutating func consume(_ bytes: ArraySlice<UInt8>, _ log: ScriptLog) {
        var start = bytes.startIndex
        for index in bytes.indices where bytes[index] == UInt8(ascii: "\n") {
            pending.append(contentsOf: bytes[start..<index])
            emit(log)
            start = index + 1
        }
        pending.append(contentsOf: bytes[start..<bytes.endIndex])
        while pending.count >= HookRunner.maxLineBytes {
            log.writeOutput(label, pending.prefix(HookRunner.maxLineBytes))
            pending.removeFirst(HookRunner.maxLineBytes)
        }
    }

    mutating func emit(_ log: ScriptLog) {
        log.writeOutput(label, pending[...])
        pending.removeAll(keepingCapacity: true)
    }

    mutating func finish(_ log: ScriptLog) {
        flush(log)
        closed = true
    }

    mutating func flush(_ log: ScriptLog) {
        if !pending.isEmpty { emit(log) }
    }
}
