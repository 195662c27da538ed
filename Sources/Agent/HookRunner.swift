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

    private func execute(
        _ arguments: [String], directory: String, environment: [String: String], timeout: Int, log: ScriptLog, prefix: String,
        location: String, onWaiting: ((String) -> Void)?
    ) throws -> ScriptOutcome {
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
        defer {
            close(outPipe[0])
            close(errPipe[0])
        }
        // Should deployctl die (kill -9), the hook's group must not run on unsupervised.
        let watchdog = supervise ? deployctl_spawn_watchdog(pid, Int32(killGrace)) : -1
        let hookStart = supervise ? ProcessTree.startTime(of: pid) : nil
        defer {
            if watchdog > 0 {
                kill(watchdog, SIGKILL)
                waitpid(watchdog, nil, 0)
            }
            // Orphans of earlier hooks adopted as their subreaper, that have ended since: reap them.
            if supervise { while waitpid(-1, nil, WNOHANG) > 0 {} }
        }

        let start = Self.now()
        let deadline = start + Double(timeout)
        var streams = [OutputStream(fd: outPipe[0], label: "[stdout]"), OutputStream(fd: errPipe[0], label: "[stderr]")]
        var exitStatus: Int32?
        var exitedAt: Double?
        var timedOut = false
        var holdersAtTimeout = false
        var announced = false
        var termSentAt: Double?
        var logFailedAt: Double?
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        // The script's exit wakes the poll below (pidfd), so no event waits on a sleep for it.
        let exitFD = deployctl_pidfd_open(pid)
        defer { if exitFD >= 0 { close(exitFD) } }

        while true {
            let open = streams.indices.filter { !streams[$0].closed }
            if exitStatus != nil, open.isEmpty { break }
            // Once the script has exited, its own ends of the pipes are closed: what is left unread arrives at once
            // (a pipe holds at most 64 KiB), so output still open after `settle` is held by another process.
            let settled = exitedAt.map { Self.now() - $0 >= Self.settle } ?? false
            // A failed script is reported at once; a background process holding its output is not waited for.
            if let status = exitStatus, status != 0, !open.isEmpty, settled { break }
            var fds = open.map { pollfd(fd: streams[$0].fd, events: Int16(POLLIN), revents: 0) }
            if exitStatus == nil, exitFD >= 0 { fds.append(pollfd(fd: exitFD, events: Int16(POLLIN), revents: 0)) }
            var now = Self.now()
            var wake = deadline - now
            if let sent = termSentAt { wake = min(wake, sent + killGrace - now) }
            if exitStatus == nil, exitFD < 0 { wake = min(wake, 0.05) }
            if let exitedAt, !announced { wake = min(wake, exitedAt + Self.settle - now) }
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
            }
            if exitStatus == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid {
                    exitStatus = raw
                    exitedAt = Self.now()
                }
            }
            now = Self.now()
            if exitStatus == 0, !announced, let exitedAt, now - exitedAt >= Self.settle, streams.contains(where: { !$0.closed }) {
                // AWS's outcome: wait for the holders until the timeout. But say at once who holds what, and how to
                // end the wait.
                announced = true
                let which = streams.filter { !$0.closed }.map { $0.label == "[stdout]" ? "stdout" : "stderr" }.joined(separator: " and ")
                let holders = OutputHolders.find(streams.filter { !$0.closed }.map(\.fd))
                let who = holders.isEmpty ? "a background process" : holders.map { "PID \($0.pid) (\($0.command))" }.joined(separator: ", ")
                let note =
                    "the script exited with code 0 but \(who) still holds its \(which): waiting until it closes it, at most until the timeout (\(Int(deadline - now)) s left). Redirect that process's output (cmd > /dev/null 2>&1 &) to end the wait."
                log.write("[deployctl] " + note)
                onWaiting?(note)
            }
            if log.failure != nil, logFailedAt == nil {
                // The output can no longer be kept (a full disk): the event fails, so the script is stopped now.
                logFailedAt = now
                kill(-pid, SIGTERM)
                termSentAt = now
            }
            if exitStatus == nil, !timedOut, logFailedAt == nil, now >= deadline {
                timedOut = true
                termSentAt = now
                log.write("[deployctl] timeout of \(timeout) s reached: sending SIGTERM to the script's process group")
                if let escaped = killEscaped(pid, startedAt: hookStart, watchdog: watchdog, SIGTERM) {
                    log.write("[deployctl] also sent SIGTERM to processes of the script outside its process group: \(escaped)")
                }
                kill(-pid, SIGTERM)
            }
            if exitStatus != nil, !timedOut, now >= deadline, streams.contains(where: { !$0.closed }) {
                // The script is done; what holds its output is left running (a started service must survive).
                holdersAtTimeout = true
                break
            }
            if let sent = termSentAt, now - sent >= killGrace {
                log.write("[deployctl] the process group did not stop within \(Int(killGrace)) s: sending SIGKILL")
                if let escaped = killEscaped(pid, startedAt: hookStart, watchdog: watchdog, SIGKILL) {
                    log.write("[deployctl] SIGKILL also to: \(escaped)")
                }
                kill(-pid, SIGKILL)
                termSentAt = nil
            }
        }
        if let failure = log.failure, logFailedAt != nil {
            kill(-pid, SIGKILL)
            if exitStatus == nil {
                var raw: Int32 = 0
                waitpid(pid, &raw, 0)
            }
            return ScriptOutcome(
                code: .unknownError, scriptName: location, message: "\(prefix) was stopped: its output cannot be logged: \(failure)",
                logTail: log.tail)
        }
        if timedOut {
            // Whatever is left of the group (and of the script's escaped processes) goes too; its status is reaped.
            if let escaped = killEscaped(pid, startedAt: hookStart, watchdog: watchdog, SIGKILL) {
                log.write("[deployctl] killed what was left of the script: \(escaped)")
            }
            kill(-pid, SIGKILL)
            if exitStatus == nil {
                var raw: Int32 = 0
                waitpid(pid, &raw, 0)
            }
            for index in streams.indices { streams[index].flush(log) }
            return ScriptOutcome(
                code: .scriptTimedOut, scriptName: location, message: "\(prefix) failed to complete in \(timeout) seconds", logTail: log.tail)
        }
        for index in streams.indices { streams[index].flush(log) }
        let stillOpen = streams.filter { !$0.closed }.map { $0.label == "[stdout]" ? "STDOUT" : "STDERR" }
        let raw = exitStatus ?? 0
        let exited = raw & 0x7f == 0
        let code = (raw >> 8) & 0xff
        if !exited {
            return ScriptOutcome(
                code: .scriptFailed, scriptName: location, message: "\(prefix) was killed by signal \(raw & 0x7f)", logTail: log.tail)
        }
        if code != 0 {
            return ScriptOutcome(code: .scriptFailed, scriptName: location, message: "\(prefix) failed with exit code \(code)", logTail: log.tail)
        }
        if holdersAtTimeout || !stillOpen.isEmpty {
            let which = stillOpen.joined(separator: " and ")
            log.write(
                "[deployctl] the timeout of \(timeout) s ended the wait: a background process still holds the script's \(which); it is left running")
            return ScriptOutcome(
                code: .outputsLeftOpen, scriptName: location,
                message:
                    "\(prefix) exited with code 0 but a background process it started still held its \(which) when the timeout of \(timeout) s ended the wait. Redirect that process's output (cmd > /dev/null 2>&1 &) or run it as a service.",
                logTail: log.tail)
        }
        return ScriptOutcome(code: .success, scriptName: location, message: "Succeeded", logTail: log.tail)
    }

    /// How long after the script's exit its output must have reached end of file unless another process holds it.
    static let settle = 0.2

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
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
