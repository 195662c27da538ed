import Foundation
import ProcFS

/// `logs/scripts.log` of one deployment: every line timestamped, script output prefixed `[stdout]`/`[stderr]` and
/// written as the bytes came (no re-encoding). It also keeps the tail (the last 2048 characters) that diagnostics
/// carry.
///
/// **Bounded.** A deployment's log holds at most `maxBytes` (default 64 MiB) on disk: the first half stays in
/// `scripts.log`; past it, output goes to `scripts.log.tail`, which is rotated to `scripts.log.tail.1` at a quarter
/// of the cap (the older `.tail.1` is dropped). Each rotation says in the new tail file how many bytes were dropped
/// so far. Several `ScriptLog`s of one deployment (an agent runs one per event) share that state through the files.
///
/// **Never traps.** Writes go through `write(2)`; the first failure (a full disk) is kept in `failure`, further
/// output is dropped, and the engine fails the event with that message.
public final class ScriptLog {
    public static let tailLimit = 2048
    public static let defaultMaxBytes: Int64 = 64 << 20
    /// The smallest cap accepted (so head and tail keep a useful amount).
    public static let minimumMaxBytes: Int64 = 64 << 10

    public let path: String
    public let maxBytes: Int64
    /// Where every line also goes, with the deployment and the current event (nil: nowhere).
    public var deploymentsLog: DeploymentsLog?
    public var deploymentId = ""
    /// The event whose lines are being written, for the deployments log.
    public var event: String?
    /// Why output could not be logged (e.g. "no space left on /dev/vda1 (/var/…/scripts.log)"); nil while writes work.
    public private(set) var failure: String?

    private var fd: Int32 = -1
    private var size: Int64 = 0
    private var inTail = false
    private var tailLines: [String] = []
    private var tailCount = 0

    var tailPath: String { path + ".tail" }
    var olderTailPath: String { path + ".tail.1" }
    var droppedPath: String { path + ".dropped" }

    public init(path: String, maxBytes: Int64 = ScriptLog.defaultMaxBytes) {
        self.path = path
        self.maxBytes = max(maxBytes, Self.minimumMaxBytes)
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var info = stat()
        if statPath(path, &info) == 0, Int64(info.st_size) >= self.maxBytes / 2 {
            inTail = true
            open(tailPath)
        } else {
            open(path)
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    private func open(_ file: String) {
        if fd >= 0 { close(fd) }
        fd = Glibc.open(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o640)
        if fd < 0 {
            record(errno, file)
            return
        }
        var info = stat()
        size = fstat(fd, &info) == 0 ? Int64(info.st_size) : 0
    }

    private func record(_ code: Int32, _ file: String) {
        guard failure == nil else { return }
        if code == ENOSPC || code == EDQUOT {
            failure = "no space left on \(ProcFS.mountSource(of: file) ?? "the device") (\(file))"
        } else {
            failure = "cannot write \(file): \(String(cString: strerror(code)))"
        }
    }

    /// `%04d-%02d-%02d %02d:%02d:%02d` in local time, without `String(format:)`: its first use sets up Foundation's
    /// locale machinery, 2% of a trivial `deployctl local`.
    static func timestamp(_ date: Date = Date()) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var parts = tm()
        localtime_r(&t, &parts)
        func padded(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return digits.count < width ? String(repeating: "0", count: width - digits.count) + digits : digits
        }
        return "\(padded(parts.tm_year + 1900, 4))-\(padded(parts.tm_mon + 1, 2))-\(padded(parts.tm_mday, 2)) "
            + "\(padded(parts.tm_hour, 2)):\(padded(parts.tm_min, 2)):\(padded(parts.tm_sec, 2))"
    }

    /// Writes one line of deployctl's own (a header or a note) and adds it to the tail.
    public func write(_ line: String) {
        let entry = Array("\(Self.timestamp()) \(line)\n".utf8)
        append(entry)
        deploymentsLog?.append(entry[...], deployment: deploymentId, event: event)
        addToTail(line)
    }

    /// Writes one line of script output, `label` (`[stdout]`) first, exactly as the script wrote its bytes.
    public func writeOutput(_ label: String, _ bytes: ArraySlice<UInt8>) {
        var entry = Array("\(Self.timestamp()) \(label)".utf8)
        entry.append(contentsOf: bytes)
        entry.append(UInt8(ascii: "\n"))
        append(entry)
        deploymentsLog?.append(entry[...], deployment: deploymentId, event: event)
        addToTail(label + String(decoding: bytes.suffix(Self.tailLimit * 4), as: UTF8.self))
    }

    private func append(_ bytes: [UInt8]) {
        guard failure == nil, fd >= 0 else { return }
        if !inTail, size + Int64(bytes.count) > maxBytes / 2 {
            let note =
                "\(Self.timestamp()) [deployctl] this log reached its cap of \(maxBytes) bytes: the first half is kept here, the most recent output in \((tailPath as NSString).lastPathComponent) (and .tail.1)\n"
            raw(Array(note.utf8))
            inTail = true
            open(tailPath)
        }
        if inTail, size + Int64(bytes.count) > maxBytes / 4, size > 0 { rotate() }
        raw(bytes)
    }

    /// The current tail file becomes `.tail.1` (the older one is dropped) and a new tail file starts with a note.
    private func rotate() {
        var info = stat()
        let dropped = statPath(olderTailPath, &info) == 0 ? Int64(info.st_size) : 0
        let total = droppedSoFar() + dropped
        if dropped > 0 { try? Data(String(total).utf8).write(to: URL(fileURLWithPath: droppedPath)) }
        if fd >= 0 { close(fd) }
        fd = -1
        guard rename(tailPath, olderTailPath) == 0 else {
            record(errno, olderTailPath)
            return
        }
        open(tailPath)
        if total > 0 {
            raw(Array("\(Self.timestamp()) [deployctl] \(total) bytes of output were dropped before this point (log cap \(maxBytes) bytes)\n".utf8))
        }
    }

    private func droppedSoFar() -> Int64 {
        (try? String(contentsOfFile: droppedPath, encoding: .utf8)).flatMap { Int64($0) } ?? 0
    }

    private func raw(_ bytes: [UInt8]) {
        var written = 0
        while written < bytes.count, failure == nil {
            let n = bytes.withUnsafeBytes { buffer in
                Glibc.write(fd, buffer.baseAddress.map { $0 + written }, bytes.count - written)
            }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                record(n < 0 ? errno : EIO, inTail ? tailPath : path)
                return
            }
            written += n
        }
        size += Int64(written)
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
