import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct CrashConsistencyTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    @Test func cliInputJSONFixtureCreatesTheDeploymentItDescribes() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        try cli.run(["create-application", "--application-name", "web-shop"])
        try cli.run(["create-deployment-group", "--application-name", "web-shop", "--deployment-group-name", "prod"])
        let fixture = Self.fixtures.appendingPathComponent("cli-input/create-deployment.json").path
        let created = try cli.json(["create-deployment", "--cli-input-json", "file://\(fixture)"])
        let id = try #require(created["deploymentId"] as? String)
        let info = try #require(try cli.json(["get-deployment", "--deployment-id", id])["deploymentInfo"] as? [String: Any])
        #expect(info["fileExistsBehavior"] as? String == "RETAIN")
        #expect(info["description"] as? String == "from --cli-input-json")
        #expect(
            (info["autoRollbackConfiguration"] as? [String: Any])?["events"] as? [String] == ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"])
        // No instance matches a group without filters: AWS fails such a deployment at once.
        #expect(info["status"] as? String == "Failed")
        #expect((info["errorInformation"] as? [String: Any])?["code"] as? String == "NO_INSTANCES")
    }

    /// Processes killed with SIGKILL at random points of create-deployment leave either a whole deployment
    /// (every target row present) or none, and the next invocation works.
    @Test func sigkillMidWriteLeavesWholeDeploymentsOrNone() throws {
        let cli = try Deployctl()
        defer { cli.cleanUp() }
        try cli.run(["create-application", "--application-name", "app"])
        let names = (0..<60).map { "node-\($0)" }
        for name in names { try cli.run(["register-on-premises-instance", "--instance-name", name]) }
        for chunk in stride(from: 0, to: names.count, by: 10) {
            let batch = Array(names[chunk..<min(chunk + 10, names.count)])
            try cli.run(["add-tags-to-on-premises-instances", "--tags", "Key=fleet,Value=all", "--instance-names"] + batch)
        }
        for g in 0..<12 {
            try cli.run([
                "create-deployment-group", "--application-name", "app", "--deployment-group-name", "g\(g)",
                "--on-premises-instance-tag-filters", "Key=fleet,Type=KEY_ONLY",
            ])
        }
        var generator = SystemRandomNumberGenerator()
        for g in 0..<12 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Deployctl.binary)
            process.arguments = [
                "create-deployment", "--application-name", "app", "--deployment-group-name", "g\(g)",
                "--s3-location", "bucket=b,key=k\(g).zip,bundleType=zip", "--state", cli.statePath,
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32(generator.next(upperBound: UInt64(40_000))))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let ids = try cli.json(["list-deployments"])["deployments"] as? [String] ?? []
        for id in ids {
            let info = try #require(try cli.json(["get-deployment", "--deployment-id", id])["deploymentInfo"] as? [String: Any])
            let pending = (info["deploymentOverview"] as? [String: Int])?["Pending"]
            let targets = try cli.json(["list-deployment-targets", "--deployment-id", id])["targetIds"] as? [String] ?? []
            #expect(pending == names.count, "deployment \(id) overview")
            #expect(targets.count == names.count, "deployment \(id) has all its targets")
        }
        // Whatever was killed, the state file still takes writes.
        try cli.run(["create-deployment-group", "--application-name", "app", "--deployment-group-name", "after"])
        #expect((try cli.json(["list-deployment-groups", "--application-name", "app"])["deploymentGroups"] as? [String])?.count == 13)
    }
}
