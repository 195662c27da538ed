import Foundation

/// `<agent-root>/deployment-logs/deployctl-deployments.log`: every line of every deployment's scripts.log, with
/// the deployment and the event on each line (`[d-ABC123] [AfterInstall] …`), as the AWS agent's
/// `codedeploy-agent-deployments.log` keeps them — one place to `tail -f` on a host. Capped: at `maxBytes` the file
/// is rotated to `.1` (and `.1` to `.2`, the older `.2` dropped). Appends go through `write(2)` with O_APPEND, so
/// several agents on one root interleave whole lines; a failure to write here never fails a deployment.
public final class DeploymentsLog {
    public static let defaultMaxBytes: Int64 = 16 << 20
    public let path: String
    let maxBytes: Int64

    public init(root: DeploymentRoot, maxBytes: Int64 = DeploymentsLog.defaultMaxBytes) {
        path = root.path + "/deployment-logs/deployctl-deployments.log"
        self.maxBytes = maxBytes
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
    }

    /// Appends one line (already timestamped by the caller) for `deployment` and `event`.
    public func append(_ line: ArraySlice<UInt8>, deployment: String, event: String?) {
        var entry = Array("[\(deployment)] [\(event ?? "-")] ".utf8)
        entry.append(contentsOf: line)
        rotateIfNeeded(adding: entry.count)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = entry.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    private func rotateIfNeeded(adding count: Int) {
        var info = stat()
        guard statPath(path, &info) == 0, Int64(info.st_size) + Int64(count) > maxBytes else { return }
        rename(path + ".1", path + ".2")
        rename(path, path + ".1")
    }
}
