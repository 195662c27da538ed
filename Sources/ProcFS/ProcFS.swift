import Foundation

/// What `/proc` says about this host, for messages that name a device or a process: the agent's "no space left on
/// DEVICE", the state file's "locked by pid N (command)", a hook's "PID N (command) still holds its output".
public enum ProcFS {
    /// The mount source (`/dev/vda1`, `tmpfs`) of the filesystem holding `path`, or of its directory when `path`
    /// does not exist (yet); nil when `/proc/self/mountinfo` does not say.
    public static func mountSource(of path: String) -> String? {
        var info = stat()
        guard lstatOrParent(path, &info), let mounts = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else {
            return nil
        }
        let device = UInt64(info.st_dev)
        let major = (device >> 8) & 0xfff | (device >> 32) & ~0xfff
        let minor = device & 0xff | (device >> 12) & ~0xff
        for line in mounts.split(separator: "\n") {
            // "36 35 8:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw": the source follows the "-" and the type.
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[2] == "\(major):\(minor)", let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count else { continue }
            return String(fields[dash + 2])
        }
        return nil
    }

    private static func lstatOrParent(_ path: String, _ info: inout stat) -> Bool {
        stat(path, &info) == 0 || stat((path as NSString).deletingLastPathComponent, &info) == 0
    }

    /// The first `words` words of a process's command line, control characters turned into spaces and cut at
    /// `maxCharacters`; nil when the process is gone or not readable.
    public static func commandLine(of pid: pid_t, words: Int, maxCharacters: Int) -> String? {
        guard let raw = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return nil }
        let text = raw.split(separator: "\0").prefix(words).joined(separator: " ")
            .map { $0.isNewline || $0.asciiValue.map { $0 < 32 } == true ? " " : String($0) }.joined()
        return text.isEmpty ? nil : String(text.prefix(maxCharacters))
    }
}
