import Foundation

/// What the reading thread hands a lane: one step of writing an entry.
enum LaneWork {
    case directory(path: String)
    case symlink(path: String, target: String, times: (timespec, timespec)?)
    case fileStart(path: String)
    case fileData(bytes: [UInt8], offset: Int64)
    case fileEnd(path: String, size: Int64, mode: mode_t, times: (timespec, timespec)?)
}

/// A thread that writes the entries of some directories of a bundle while the calling thread decompresses the
/// next ones: extraction is mostly the kernel creating files, and two lanes keep both cores of a small host busy.
///
/// An entry goes to the lane its path hashes to, so the entries for one path (a path written twice, a file and the
/// symlink that replaces it) keep their archive order, while the files of one directory are shared between lanes.
/// Every lane reaches paths through its own ``DiskWriter``: `O_NOFOLLOW` on every component, so a race between
/// lanes (a symlink entry and an entry below it, which ``EntrySafety`` refuses in one order and the writer in the
/// other) can fail an entry but never leads out of the staging directory.
///
/// The queue holds at most ``budget`` bytes of file data: the reading thread waits when a lane falls behind, so
/// memory stays flat whatever the bundle's size.
final class ExtractionLane: @unchecked Sendable {
    // `queue`, `queuedBytes`, `closed` and `failure` are guarded by `condition`; `writer` and `open` are used by the
    // lane's thread only, once started, and by the caller again only after `finished` was waited for.
    static let budget = 2 << 20
    private let condition = NSCondition()
    private var queue: [LaneWork] = []
    private var queuedBytes = 0
    private var closed = false
    private var failure: BundleError?
    private let finished = DispatchSemaphore(value: 0)
    private let writer: DiskWriter
    private var open: (fd: Int32, path: String, end: Int64)?

    init(root: String) throws(BundleError) {
        writer = try DiskWriter(root: root)
    }

    func start() {
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "deployctl-extract"
        thread.start()
    }

    /// Queues `work`; waits while the lane holds more than ``budget`` bytes. Throws the lane's failure, if any.
    func push(_ work: LaneWork) throws(BundleError) {
        var size = 0
        if case .fileData(let bytes, _) = work { size = bytes.count }
        condition.lock()
        while queuedBytes > Self.budget, failure == nil { condition.wait() }
        if let failure {
            condition.unlock()
            throw failure
        }
        queue.append(work)
        queuedBytes += size
        condition.signal()
        condition.unlock()
    }

    /// Ends the lane once its queue is written, and returns its failure, if any.
    func finish() -> BundleError? {
        condition.lock()
        closed = true
        condition.signal()
        condition.unlock()
        finished.wait()
        if let open { close(open.fd) }
        open = nil
        return failure
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty, !closed { condition.wait() }
            if queue.isEmpty {
                condition.unlock()
                return
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            queuedBytes = 0
            let failed = failure != nil
            condition.broadcast()
            condition.unlock()
            if failed { continue }
            do throws(BundleError) {
                for work in batch { try apply(work) }
            } catch {
                condition.lock()
                failure = error
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    private func apply(_ work: LaneWork) throws(BundleError) {
        writer.limitOpenDirectories()
        switch work {
        case .directory(let path):
            try writer.makeDirectory(path)
        case .symlink(let path, let target, let times):
            try writer.symlink(path, to: target, times: times)
        case .fileStart(let path):
            open = (try writer.createFile(path), path, 0)
        case .fileData(let bytes, let offset):
            guard let file = open else { return }
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { raw in
                    raw.baseAddress.map { pwrite(file.fd, $0 + done, raw.count - done, off_t(offset) + off_t(done)) } ?? -1
                }
                guard n > 0 else { throw .io("cannot write '\(file.path)' in \(writer.root): \(String(cString: strerror(errno)))") }
                done += n
            }
            open?.end = max(file.end, offset + Int64(bytes.count))
        case .fileEnd(let path, let size, let mode, let times):
            guard let file = open else { return }
            open = nil
            try writer.finishFile(file.fd, path: path, size: size, written: file.end, mode: mode, times: times)
        }
    }
}
