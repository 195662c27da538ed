import ArtifactStore
import ControlPlane
import DeployModel
import DeployStore
import DeployStorePostgres
import DeployStoreSQLite
import Foundation
import TestSupport

/// The stores every control-plane test runs against: the same rules must hold on each. PostgreSQL's is a schema of
/// its own in the test process's cluster (``PostgresCluster``). `DEPLOYCTL_TEST_STORES=postgres` (a comma-separated
/// list) runs the tests on those stores only (`make test-postgres`).
enum StoreKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, memory, postgres

    var description: String { rawValue }

    /// The kinds the tests run on.
    static let selected: [StoreKind] = {
        guard let names = ProcessInfo.processInfo.environment["DEPLOYCTL_TEST_STORES"], !names.isEmpty else { return allCases }
        return names.split(separator: ",").compactMap { StoreKind(rawValue: String($0)) }
    }()

    /// A fresh store of this kind (SQLite in a new file under `directory`).
    func make(in directory: URL) throws -> any DeployStore {
        switch self {
        case .sqlite: return SQLiteStore(file: try StateFile(path: directory.appendingPathComponent("state.db").path))
        case .memory: return MemoryStore()
        case .postgres:
            let cluster = try PostgresCluster.shared.get()
            return try PostgresStore(url: try DatabaseURL(try cluster.freshURL(), allowPassword: false), maxConnections: 4)
        }
    }
}

/// A control plane over a fresh store (a state file in a temporary directory, or memory).
final class PlaneFixture {
    let directory: URL
    let plane: ControlPlane

    init(_ kind: StoreKind = .sqlite) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        plane = ControlPlane(store: try kind.make(in: directory))
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func instance(_ name: String, tags: [(String, String)]) throws {
        try plane.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: name))
        if !tags.isEmpty {
            try plane.addTagsToOnPremisesInstances(
                AddTagsToOnPremisesInstancesInput(tags: tags.map { Tag(key: $0.0, value: $0.1) }, instanceNames: [name]))
        }
    }

    func app(_ name: String = "app") throws {
        _ = try plane.createApplication(CreateApplicationInput(applicationName: name))
    }

    func group(_ name: String = "group", app: String = "app", filters: [TagFilter] = [], tagSet: [[TagFilter]]? = nil, config: String? = nil) throws {
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: app, deploymentGroupName: name, deploymentConfigName: config,
                onPremisesInstanceTagFilters: filters, onPremisesTagSet: tagSet.map { OnPremisesTagSet(onPremisesTagSetList: $0) }))
    }

    func deploy(app: String = "app", group: String = "group", key: String = "app.zip") throws -> String {
        let output = try plane.createDeployment(
            CreateDeploymentInput(
                applicationName: app, deploymentGroupName: group,
                revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "releases", key: key, bundleType: .zip))))
        return output.deploymentId ?? ""
    }
}

/// The service error code a throwing call produced, or nil.
func serviceErrorCode(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as ServiceError {
        return error.code
    } catch {
        return "unexpected: \(error)"
    }
}
