import Foundation

/// `logs/scripts.log` of one deployment: every line timestamped, script output prefixed `[stdout]`/`[stderr]`,
/// flushed line by line. It also keeps the tail (the last 2048 characters) that diagnostics carry.
public final class ScriptLog {
    public static let tailLimit = 2048

    private let handle: FileHandle?
    public let path: String
    private var tailLines: [String] = []
    private var tailCount = 0

    public init(path: String) {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640])
        }
        handle = FileHandle(forWritingAtPath: path)
        _ = try? handle?.seekToEnd()
    }

    deinit { try? handle?.close() }

    static func timestamp(_ date: Date = Date()) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// Writes one line (a header or one line of script output) and adds it to the tail.
    public func write(_ line: String) {
        let entry = "\(Self.timestamp()) \(line)\n"
        handle?.write(Data(entry.utf8))
        addToTail(line)
    }

    /// Starts a new tail (each script's diagnostics carry only its own output).
    public func resetTail() {
        tailLines.removeAll()
        tailCount = 0
    }

    private func addToTail(_ line: String) {
        let text = line.count > Self.tailLimit ? String(line.suffix(Self.tailLimit)) : line
        tailLines.append(text)
        tailCount += text.count + 1
        while tailCount > Self.tailLimit, !tailLines.isEmpty {
            tailCount -= tailLines.removeFirst().count + 1
        }
    }

    /// The most recent lines, at most 2048 characters in all.
    public var tail: String { tailLines.joined(separator: "\n") }
}
