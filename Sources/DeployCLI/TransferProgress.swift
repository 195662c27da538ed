import Foundation
import Synchronization

/// A progress line on a terminal (stderr) for an operation that moves many bytes — bytes, rate and, when the total
/// is known, the time left — read from outside the code doing the work: the read position of the open file
/// (`/proc/self/fdinfo`) or the size of the file being written. Nothing is shown off a terminal or for small files.
final class TransferProgress: Sendable {
    enum Measure: Sendable {
        /// Bytes read so far from `path`, out of its size.
        case reading(path: String, total: Int64)
        /// The size `path` has grown to (a file being written, whose final size is unknown).
        case writing(path: String)
    }

    /// Shown only for transfers above this size (a few MB take no time worth showing).
    static let threshold: Int64 = 4 << 20

    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    /// Starts the line, or returns nil when it would not be shown.
    static func start(_ label: String, _ measure: Measure, force: Bool = false) -> TransferProgress? {
        guard force || isatty(STDERR_FILENO) == 1, ProcessInfo.processInfo.environment["TERM"] != "dumb" else { return nil }
        if case .reading(_, let total) = measure, total < threshold { return nil }
        let progress = TransferProgress()
        Thread.detachNewThread { progress.run(label, measure) }
        return progress
    }

    /// Runs `work` with the line shown, and clears it before returning (so what is printed next starts clean).
    static func showing<T, E: Error>(_ label: String, _ measure: Measure, _ work: () throws(E) -> T) throws(E) -> T {
        let progress = start(label, measure)
        defer { progress?.stop() }
        return try work()
    }

    /// Ends the line (clears it) and waits for the ticker to finish.
    func stop() {
        stopped.store(true, ordering: .releasing)
        done.wait()
    }

    private func run(_ label: String, _ measure: Measure) {
        let started = Date()
        var shown = false
        while !stopped.load(ordering: .acquiring) {
            Thread.sleep(forTimeInterval: 0.2)
            if stopped.load(ordering: .acquiring) { break }
            let elapsed = Date().timeIntervalSince(started)
            let text: String?
            switch measure {
            case .reading(let path, let total):
                text = Self.readPosition(of: path).map { read in
                    let rate = Double(read) / max(elapsed, 0.001)
                    let left = rate > 0 ? Double(total - read) / rate : 0
                    return
                        "\(label) \(Self.mebibytes(read)) / \(Self.mebibytes(total)) MiB  \(Self.mebibytes(Int64(rate))) MiB/s  \(Int(left.rounded())) s left"
                }
            case .writing(let path):
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
                text =
                    size < Self.threshold
                    ? nil : "\(label) \(Self.mebibytes(size)) MiB written  \(Self.mebibytes(Int64(Double(size) / max(elapsed, 0.001)))) MiB/s"
            }
            if let text {
                FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text).utf8))
                shown = true
            }
        }
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        done.signal()
    }

    static func mebibytes(_ bytes: Int64) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }

    /// The read position of this process's open descriptor of `path`, if it has one.
    static func readPosition(of path: String) -> Int64? {
        let wanted = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return nil }
        for fd in descriptors {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd), target == wanted,
                let info = try? String(contentsOfFile: "/proc/self/fdinfo/" + fd, encoding: .utf8),
                let line = info.split(separator: "\n").first(where: { $0.hasPrefix("pos:") })
            else { continue }
            return Int64(line.dropFirst(4).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
