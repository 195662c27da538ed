import Foundation

/// `<agent-root>/deployment-logs/deployctl-deployments.log`: every line of every deployment's scripts.log, with
/// the deployment and the event on each line (`[d-ABC123] [AfterInstall] …`), as the AWS agent's
/// `codedeploy-agent-deployments.log` keeps them — one place to `tail -f` on a host. Capped: at `maxBytes` the file
/// is rotated to `.1` (and `.1` to `.2`, the older `.2` dropped). Appends go through one `write(2)` per line with
/// O_APPEND, so several agents on one root interleave whole lines; a failure to write here never fails a deployment.
public final class DeploymentsLog {
    public static let defaultMaxBytes: Int64 = 16 << 20
    public let path: String
    let maxBytes: Int64
    private var fd: Int32 = -1
    private var size: Int64 = 0

    deinit { if fd >= 0 { close(fd) } }

    public init(root: DeploymentRoot, maxBytes: Int64 = DeploymentsLog.defaultMaxBytes) {
        let directory = root.path + "/deployment-logs"
        path = directory + "/deployctl-deployments.log"
        self.maxBytes = maxBytes
        // mkdir(2) rather than FileManager's `attributes:`, a `[FileAttributeKey: Any]` whose first use cost 2% of a
        // trivial deployment.
        var made = mkdir(directory, 0o750) == 0
        if !made, errno == ENOENT {
            try? FileManager.default.createDirectory(atPath: root.path, withIntermediateDirectories: true)
            made = mkdir(directory, 0o750) == 0
        }
        if made { _ = chmod(directory, 0o750) }  // whatever the umask
    }

    /// Appends one line (already timestamped by the caller) for `deployment` and `event`.
    public func append(_ line: ArraySlice<UInt8>, deployment: String, event: String?) {
        var entry = Array("[\(deployment)] [\(event ?? "-")] ".utf8)
        entry.append(contentsOf: line)
        if fd < 0 { reopen() }
        if size + Int64(entry.count) > maxBytes {
            // Another agent may have rotated already: only rotate what is still the file at `path`.
            var mine = stat()
            var current = stat()
            if fd >= 0, fstat(fd, &mine) == 0, statPath(path, &current) == 0, mine.st_ino == current.st_ino {
                rename(path + ".1", path + ".2")
                rename(path, path + ".1")
            }
            reopen()
        }
        guard fd >= 0 else { return }
        let written = entry.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written > 0 { size += Int64(written) }
    }

    private func reopen() {
        if fd >= 0 { close(fd) }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o640)
        var info = stat()
        size = fd >= 0 && fstat(fd, &info) == 0 ? Int64(info.st_size) : 0
    }
}
