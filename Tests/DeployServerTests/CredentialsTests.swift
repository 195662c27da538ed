import ControlPlane
import DeployModel
import DeployStore
import DeployStoreSQLite
import Foundation
import Testing

@testable import DeployServer

/// The server remembers keys and instance identities until access changes: a key deactivated or deleted, or an
/// instance deregistered, in the server's process stops at once; in another process (another connection to the same
/// file) as soon as the change is noted (the server's clock does within a second); unknown ids are remembered only
/// briefly and in a bounded table.
@Suite struct CredentialsTests {
    func planes() throws -> (server: ControlPlane, other: ControlPlane, directory: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("credentials-\(UUID().uuidString)").path
        let path = directory + "/state.db"
        let server = ControlPlane(store: SQLiteStore(file: try StateFile(path: path)), expiresOnRead: false)
        let other = ControlPlane(store: SQLiteStore(file: try StateFile(path: path)), expiresOnRead: false)
        return (server, other, directory)
    }

    @Test func aChangeInTheServersProcessStopsAKeyAtOnce() throws {
        let (plane, _, directory) = try planes()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let credentials = Credentials(plane: plane)
        let key = try plane.createAccessKey(userName: "ci", role: .deployer)
        #expect(credentials.lookup(key.accessKeyId)?.role == .deployer)
        try plane.updateAccessKey(accessKeyId: key.accessKeyId, status: "Inactive")
        #expect(credentials.lookup(key.accessKeyId) == nil)
        try plane.updateAccessKey(accessKeyId: key.accessKeyId, status: "Active")
        #expect(credentials.lookup(key.accessKeyId)?.userName == "ci")
        try plane.deleteAccessKey(accessKeyId: key.accessKeyId)
        #expect(credentials.lookup(key.accessKeyId) == nil)
    }

    @Test func aChangeByAnotherProcessStopsAKeyOnceNoted() throws {
        let (plane, other, directory) = try planes()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let credentials = Credentials(plane: plane)
        let key = try other.createAccessKey(userName: "ci", role: .admin)
        #expect(credentials.lookup(key.accessKeyId)?.role == .admin)
        try other.deleteAccessKey(accessKeyId: key.accessKeyId)
        // Remembered: nothing in this process changed (this is what the read saved).
        #expect(credentials.lookup(key.accessKeyId)?.role == .admin)
        plane.noteAccessChange()
        #expect(credentials.lookup(key.accessKeyId) == nil)
    }

    @Test func identitiesFollowRegistration() async throws {
        let (plane, _, directory) = try planes()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let credentials = Credentials(plane: plane)
        let readers = BlockingExecutor(threads: 1, name: "test-identities")
        defer { readers.shutdown() }
        #expect(try await credentials.identities(of: "web-1", readers: readers).isEmpty)
        _ = try plane.registerInstanceWithKey(instanceName: "web-1", tags: [])
        #expect(try await credentials.identities(of: "web-1", readers: readers) == [plane.instanceUserArn("web-1")])
        try plane.deregisterInstanceWithKeys(instanceName: "web-1")
        #expect(try await credentials.identities(of: "web-1", readers: readers).isEmpty)
    }

    @Test func unknownIdsAreBoundedAndForgotten() throws {
        let (plane, _, directory) = try planes()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let credentials = Credentials(plane: plane)
        for index in 0..<(Credentials.maxUnknown * 2) { #expect(credentials.lookup("AKIAUNKNOWN\(index)") == nil) }
        #expect(credentials.unknownCount <= Credentials.maxUnknown)
        // A key made after its id was looked up as unknown works once made here (the change is counted).
        let key = try plane.createAccessKey(
            userName: "late", role: .readOnly, accessKeyId: "AKIAUNKNOWN7", secretAccessKey: String(repeating: "s", count: 40))
        #expect(credentials.lookup(key.accessKeyId)?.role == .readOnly)
    }
}
