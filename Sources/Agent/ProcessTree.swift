import Foundation

/// The processes of this host as `/proc` shows them: enough to find every descendant of a hook, including those
/// that left its process group (`setsid`, `set -m`) and were re-parented to deployctl as a subreaper.
struct ProcessTree {
    struct Entry {
        var parent: pid_t
        var command: String
        /// Clock ticks after boot when the process started (`/proc/<pid>/stat` field 22).
        var startTime: UInt64
    }

    var entries: [pid_t: Entry] = [:]

    /// Reads `/proc/<pid>/stat` of every process (those that vanish meanwhile are skipped).
    static func snapshot() -> ProcessTree {
        var tree = ProcessTree()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
            else { continue }
            let command = String(stat[stat.index(after: open)..<close])
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 19, let parent = pid_t(fields[1]), let start = UInt64(fields[19]) else { continue }
            tree.entries[pid] = Entry(parent: parent, command: command, startTime: start)
        }
        return tree
    }

    /// Every descendant of `root`, and every child of this process (a subreaper) that started after `root` did
    /// (an orphan of the hook, re-parented to us), with their descendants. Processes adopted before the hook
    /// started (services earlier hooks daemonized) are not the hook's.
    /// `excluded`: children of ours that are not the hook's (its watchdog). A child started in the same clock tick
    /// as the hook is not taken for the hook's (a service of the hook just before may have).
    func descendants(of root: pid_t, startedAt rootStart: UInt64, excluding excluded: Set<pid_t> = []) -> [pid_t] {
        let me = getpid()
        var roots: Set<pid_t> = [root]
        for (pid, entry) in entries where entry.parent == me && pid != root && !excluded.contains(pid) && entry.startTime > rootStart {
            roots.insert(pid)
        }
        var result: [pid_t] = []
        for pid in entries.keys where pid != root && !excluded.contains(pid) {
            var current = pid
            var steps = 0
            while let entry = entries[current], steps < 4096 {
                if roots.contains(current) {
                    result.append(pid)
                    break
                }
                current = entry.parent
                steps += 1
            }
        }
        return result.sorted()
    }

    /// The start time of one process (nil when it is gone).
    static func startTime(of pid: pid_t) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// "1234 (sleep), 1240 (python3)" for the log.
    func describe(_ pids: [pid_t]) -> String {
        pids.map { "\($0) (\(entries[$0]?.command ?? "?"))" }.joined(separator: ", ")
    }
}
