import Bundles
import Foundation

/// The agent's directory tree (ARCHITECTURE.md, compatibility facts):
///
///     <root>/<group-id>/<deployment-id>/{bundle.<ext>, deployment-archive/, logs/scripts.log}
///     <root>/deployment-instructions/<group-id>-cleanup                   what the last install created
///     <root>/deployment-instructions/<group-id>_last_successful_install   deployment dir of the last good install
///     <root>/deployment-instructions/<group-id>_most_recent_install       deployment dir of the latest download
public struct DeploymentRoot: Sendable {
    public let path: String

    public init(path: String) {
        self.path = URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// `/opt/deployctl/deployment-root` for root, else under the per-user state directory.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if getuid() == 0 { return "/opt/deployctl/deployment-root" }
        if let xdg = environment["XDG_STATE_HOME"], !xdg.isEmpty { return xdg + "/deployctl/deployment-root" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.local/state/deployctl/deployment-root"
    }

    public func groupDirectory(_ groupId: String) -> String { path + "/" + groupId }
    public func deploymentDirectory(group: String, deployment: String) -> String { groupDirectory(group) + "/" + deployment }
    public func archiveDirectory(group: String, deployment: String) -> String {
        deploymentDirectory(group: group, deployment: deployment) + "/deployment-archive"
    }
    public func scriptLog(group: String, deployment: String) -> String {
        deploymentDirectory(group: group, deployment: deployment) + "/logs/scripts.log"
    }
    public var instructionsDirectory: String { path + "/deployment-instructions" }
    public func cleanupList(_ group: String) -> String { instructionsDirectory + "/\(group)-cleanup" }
    func marker(_ group: String, _ kind: String) -> String { instructionsDirectory + "/\(group)_\(kind)" }

    /// The deployment directory the marker names, if it still exists.
    public func lastSuccessfulInstall(_ group: String) -> String? { readMarker(marker(group, "last_successful_install")) }
    public func mostRecentInstall(_ group: String) -> String? { readMarker(marker(group, "most_recent_install")) }

    func readMarker(_ file: String) -> String? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        // Not `trimmingCharacters(in:)`: that goes through NSString and CharacterSet, 4% of a trivial deployment.
        var trimmed = Substring(text)
        while trimmed.first?.isWhitespace == true { trimmed.removeFirst() }
        while trimmed.last?.isWhitespace == true { trimmed.removeLast() }
        let directory = String(trimmed)
        return FileManager.default.fileExists(atPath: directory) ? directory : nil
    }

    func writeMarker(_ group: String, _ kind: String, _ directory: String) throws {
        try FileManager.default.createDirectory(atPath: instructionsDirectory, withIntermediateDirectories: true)
        let file = marker(group, kind)
        let temporary = file + ".tmp"
        // Written, flushed and renamed over the marker: a crash leaves the old marker or the new one. With write(2)
        // rather than Data.write(to:), whose generic Data(String.UTF8View) and URL paths cost 2% of a trivial deployment.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AgentError.io("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        do throws(DescriptorCopy.Failure) {
            try DescriptorCopy.write(Array(directory.utf8)[...], to: fd)
            if fsync(fd) != 0 { throw .write(errno) }
        } catch {
            close(fd)
            unlink(temporary)
            throw AgentError.io(error.describe(reading: temporary, writing: temporary))
        }
        close(fd)
        guard rename(temporary, file) == 0 else { throw AgentError.io("cannot write \(file): \(String(cString: strerror(errno)))") }
    }

    public func markMostRecent(_ group: String, _ directory: String) throws { try writeMarker(group, "most_recent_install", directory) }
    /// The deployment directory of the group's most recent failed deployment (kept by pruning for its logs).
    public func lastFailed(_ group: String) -> String? { readMarker(marker(group, "last_failed")) }
    public func markLastFailed(_ group: String, _ directory: String) throws { try writeMarker(group, "last_failed", directory) }
    public func markLastSuccessful(_ group: String, _ directory: String) throws {
        try writeMarker(group, "last_successful_install", directory)
    }

    /// Removes the oldest deployment directories of a group so that at most `maxRevisions` remain, never the
    /// current one, the last successful one, the most recent one, or the most recent failed one (its logs).
    @discardableResult
    public func prune(group: String, keeping current: String, maxRevisions: Int) -> [String] {
        let directory = groupDirectory(group)
        let protected = Set([current, lastSuccessfulInstall(group), mostRecentInstall(group), lastFailed(group)].compactMap { $0 })
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).map { directory + "/" + $0 }
        let excess = all.count - maxRevisions
        guard excess > 0 else { return [] }
        let candidates = all.filter { !protected.contains($0) }.sorted { modified($0) < modified($1) }
        var removed: [String] = []
        for victim in candidates.prefix(excess) where (try? FileManager.default.removeItem(atPath: victim)) != nil {
            removed.append(victim)
        }
        return removed
    }

    func modified(_ path: String) -> Double {
        var info = stat()
        guard stat(path, &info) == 0 else { return 0 }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }
}
