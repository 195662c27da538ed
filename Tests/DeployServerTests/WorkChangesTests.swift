import ControlPlane
import DeployModel
import DeployStore
import DeployStoreSQLite
import Foundation
import HostCommandModel
import Testing

/// The server's state file counts its commits that change what an agent's poll looks at (deployments, targets,
/// host commands) and no others: an idle fleet's contacts and keys do not make every settled poll look again.
@Suite struct WorkChangesTests {
    @Test func onlyChangesToDeploymentsTargetsAndCommandsCount() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("work-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try StateFile(path: directory + "/state.db", concurrentReaders: 2)
        let plane = ControlPlane(store: SQLiteStore(file: file), expiresOnRead: false)
        let start = try #require(file.workChanges)
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "app"))
        _ = try plane.registerInstanceWithKey(instanceName: "web-1", tags: [Tag(key: "k", value: "v")])
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "app", deploymentGroupName: "g", onPremisesInstanceTagFilters: [TagFilter(key: "k", type: .keyOnly)]))
        _ = try plane.createAccessKey(userName: "ci")
        try plane.recordAgentContacts([AgentContactRecord(instanceName: "web-1", lastSeen: 1, address: "127.0.0.1", agent: "test")])
        #expect(file.workChanges == start)
        _ = try plane.createDeployment(
            CreateDeploymentInput(
                applicationName: "app", deploymentGroupName: "g",
                revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "b", key: "k.zip", bundleType: .zip))))
        let created = try #require(file.workChanges)
        #expect(created > start)
        let command = try #require(try plane.pollHostCommand(instanceName: "web-1"))
        #expect(try #require(file.workChanges) > created)
        // What the server runs on its clock changes nothing when there is nothing to do: an idle fleet's settled
        // polls stay settled.
        try plane.acknowledgeHostCommand(id: command.id, expectedSeconds: 600)
        let quiet = file.workChanges
        for _ in 0..<3 {
            #expect(try plane.expireOverdueCommands() + plane.expireBlueGreenWaits() + plane.expireBakes() == 0)
            _ = try plane.claimDeliveries(limit: 10, policy: DeliveryPolicy())
            _ = try plane.trafficSteps()
        }
        #expect(file.workChanges == quiet)
        // A refused write counts nothing it did not commit.
        let before = file.workChanges
        #expect(throws: (any Error).self) { try plane.stopDeployment(StopDeploymentInput(deploymentId: "d-NOSUCHONE")) }
        #expect(file.workChanges == before)
        // A single connection (the CLI, agents) does not count.
        let single = try StateFile(path: directory + "/state.db")
        #expect(single.workChanges == nil)
    }
}
