import ControlPlane
import DeployStore
import DeployStoreSQLite
import Foundation
import Testing

@testable import DeployServer

/// The writer's group commit: requests that queue together commit together, each gets its own answer, a failing one
/// leaves no trace and does not take the others with it, and nothing is taken after shutdown.
@Suite struct GroupCommitTests {
    struct Refused: Error, Equatable { var index: Int }

    func plane() throws -> (ControlPlane, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("group-\(UUID().uuidString)").path
        let file = try StateFile(path: directory + "/state.db", concurrentReaders: 2)
        return (ControlPlane(store: SQLiteStore(file: file), expiresOnRead: false), directory)
    }

    @Test func queuedRequestsCommitInGroupsEachWithItsOwnOutcome() async throws {
        let (plane, directory) = try plane()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writer = BlockingExecutor(threads: 1, name: "test-group")
        defer { writer.shutdown() }
        let metrics = ServerMetrics()
        let group = GroupCommit(writer: writer, plane: plane, metrics: metrics, maxGroup: 16)
        // Hold the writer so that all 60 requests queue, then let them through.
        let hold = try await ThreadHold(writer)
        let requests = (0..<60).map { index in
            Task { () -> Result<Int, any Error> in
                await Result {
                    try await group.perform { plane in
                        try plane.store.write { tx in
                            try tx.insertApplication(
                                ApplicationRecord(id: "\(index)", name: "app-\(index)", computePlatform: "Server", createTime: Date()))
                            if index % 3 == 0 { throw Refused(index: index) }
                            return index
                        }
                    }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        try await hold.release()
        for (index, request) in requests.enumerated() {
            switch await request.value {
            case .success(let value): #expect(index % 3 != 0 && value == index)
            case .failure(let error): #expect(error as? Refused == Refused(index: index))
            }
        }
        let names = try plane.store.read { tx in try tx.applicationNames() }
        #expect(names.count == 40)
        #expect(!names.contains("app-0") && names.contains("app-1"))
        // 60 requests, at most 16 a group: at least 4 groups, and far fewer than 60 commits.
        let text = metrics.text(sampling: [], connections: ConnectionLimiter(limit: 1))
        let groups = text.split(separator: "\n").first { $0.hasPrefix("deployctl_write_groups_total") }.flatMap {
            Int($0.split(separator: " ").last ?? "")
        }
        #expect(groups.map { $0 >= 4 && $0 <= 8 } == true, "\(text)")
    }

    @Test func requestsAfterShutdownAreRefused() async throws {
        let (plane, directory) = try plane()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writer = BlockingExecutor(threads: 1, name: "test-group-stop")
        writer.shutdown()
        let group = GroupCommit(writer: writer, plane: plane, metrics: ServerMetrics())
        await #expect(throws: BlockingExecutor.Refusal.self) { try await group.perform { _ in 1 } }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
