import Foundation
import Testing

@testable import Agent

/// The deployment-instructions markers: written whole (fsync, rename), read back trimmed, never written through a
/// symlink.
@Suite struct DeploymentRootMarkerTests {
    static func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/markers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path + "/web/d-1", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: path + "/web/d-2", withIntermediateDirectories: true)
        return path
    }

    @Test func aMarkerIsReplacedWholeAndReadBack() throws {
        let path = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let root = DeploymentRoot(path: path)
        #expect(root.lastSuccessfulInstall("web") == nil)
        try root.markLastSuccessful("web", path + "/web/d-1")
        #expect(root.lastSuccessfulInstall("web") == path + "/web/d-1")
        try root.markLastSuccessful("web", path + "/web/d-2")
        #expect(root.lastSuccessfulInstall("web") == path + "/web/d-2")
        let files = try FileManager.default.contentsOfDirectory(atPath: root.instructionsDirectory)
        #expect(files == ["web_last_successful_install"], "\(files)")
        // A marker written by hand, with surrounding blank space, still names its directory; a vanished one, nothing.
        try " \n\(path)/web/d-1\n\n".write(toFile: root.marker("web", "last_successful_install"), atomically: false, encoding: .utf8)
        #expect(root.lastSuccessfulInstall("web") == path + "/web/d-1")
        try root.markMostRecent("web", path + "/web/gone")
        #expect(root.mostRecentInstall("web") == nil)
    }

    @Test func aSymlinkWhereTheTemporaryFileGoesIsNotFollowed() throws {
        let path = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let root = DeploymentRoot(path: path)
        try FileManager.default.createDirectory(atPath: root.instructionsDirectory, withIntermediateDirectories: true)
        let victim = path + "/victim"
        try "keep\n".write(toFile: victim, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root.marker("web", "most_recent_install") + ".tmp", withDestinationPath: victim)
        #expect(throws: AgentError.self) { try root.markMostRecent("web", path + "/web/d-1") }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep\n")
        #expect(root.mostRecentInstall("web") == nil)
    }
}
