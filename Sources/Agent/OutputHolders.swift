import Foundation
import ProcFS

/// Which processes hold the write end of a hook's output pipes after the script has exited (a background job
/// started without redirecting its output), found in `/proc/<pid>/fd`.
enum OutputHolders {
    struct Holder: Equatable {
        var pid: pid_t
        var command: String
    }

    /// `readEnds`: our read ends of the pipes; a holder has a descriptor on the same pipe (`pipe:[inode]`).
    static func find(_ readEnds: [Int32]) -> [Holder] {
        var wanted = Set<String>()
        for fd in readEnds {
            var info = stat()
            if fstat(fd, &info) == 0 { wanted.insert("pipe:[\(info.st_ino)]") }
        }
        guard !wanted.isEmpty else { return [] }
        let me = getpid()
        var found: [Holder] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), pid != me else { continue }
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(name)/fd")) ?? []
            var buffer = [CChar](repeating: 0, count: 64)
            let holds = fds.contains { fd in
                let count = readlink("/proc/\(name)/fd/\(fd)", &buffer, buffer.count - 1)
                guard count > 0 else { return false }
                return wanted.contains(String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            guard holds else { continue }
            found.append(Holder(pid: pid, command: ProcFS.commandLine(of: pid, words: 4, maxCharacters: 120) ?? "?"))
            if found.count >= 5 { break }
        }
        return found.sorted { $0.pid < $1.pid }
    }
}
