import Agent
import ArtifactStore
import Bundles
import ControlPlane
import DeployModel
import Foundation
import HostCommandModel
import Testing

/// The agent's loop against the control plane in process, through the seams the server and remote agents will use
/// (`HostCommandService`, `HostCommandAdapter`, `ArtifactStorage`), on each store: a deployment runs to its end.
@Suite struct AgentLoopTests {
    @Test(arguments: StoreKind.selected)
    func aDeploymentRunsToItsEndThroughTheHostCommandService(_ store: StoreKind) async throws {
        let f = try PlaneFixture(store)
        let base = f.directory.path
        // A revision with a file and a hook, bundled and stored as push would.
        let source = base + "/src"
        try FileManager.default.createDirectory(atPath: source + "/site", withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: source + "/site/index.html"))
        try Data("#!/bin/sh\necho \"$LIFECYCLE_EVENT on $DEPLOYCTL_INSTANCE_NAME\" > \(base)/hook.txt\n".utf8)
            .write(to: URL(fileURLWithPath: source + "/after.sh"))
        chmod(source + "/after.sh", 0o755)
        try Data(
            "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\nhooks:\n  AfterInstall:\n    - location: after.sh\n".utf8
        ).write(to: URL(fileURLWithPath: source + "/appspec.yml"))
        try BundleArchive.create(from: source, to: base + "/site.zip", type: .zip)
        let artifacts = ArtifactStore(root: f.directory.appendingPathComponent("artifacts"))
        let stored = try artifacts.put(bucket: "releases", key: "site.zip", contentsOf: URL(fileURLWithPath: base + "/site.zip"))

        try f.app()
        try f.instance("web-1", tags: [("role", "web")])
        try f.group(filters: [TagFilter(key: "role", value: "web", type: .keyAndValue)])
        let id =
            try f.plane.createDeployment(
                CreateDeploymentInput(
                    applicationName: "app", deploymentGroupName: "group",
                    revision: RevisionLocation(
                        revisionType: .s3, s3Location: S3Location(bucket: "releases", key: "site.zip", bundleType: .zip, eTag: stored.eTag)))
            ).deploymentId ?? ""

        let service: any HostCommandService = f.plane
        let adapter = HostCommandAdapter(service: service, artifacts: artifacts, installRoot: base + "/host")
        let engine = LifecycleEngine(root: DeploymentRoot(path: base + "/agent-root"), runner: HookRunner(killGrace: 1))
        let loop = AgentLoop(engine: engine, controlPlane: adapter, instanceName: "web-1")
        let ran = try await loop.runPending()
        #expect(ran == 7, "ApplicationStop through ValidateService")

        let info = try #require(try f.plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo)
        #expect(info.status == .succeeded, "\(String(describing: info.errorInformation))")
        #expect(try String(contentsOfFile: base + "/host/srv/site/index.html", encoding: .utf8) == "hello\n")
        #expect(try String(contentsOfFile: base + "/hook.txt", encoding: .utf8) == "AfterInstall on web-1\n")
        #expect(try await loop.runPending() == 0)
    }

    @Test(arguments: StoreKind.selected)
    func aBundleWithAnotherETagFailsDownloadBundleWithTheReason(_ store: StoreKind) async throws {
        let f = try PlaneFixture(store)
        try f.app()
        try f.instance("web-1", tags: [("role", "web")])
        try f.group(filters: [TagFilter(key: "role", value: "web", type: .keyAndValue)])
        let artifacts = ArtifactStore(root: f.directory.appendingPathComponent("artifacts"))
        try Data("not the bundle".utf8).write(to: f.directory.appendingPathComponent("x.zip"))
        _ = try artifacts.put(bucket: "releases", key: "x.zip", contentsOf: f.directory.appendingPathComponent("x.zip"))
        let id =
            try f.plane.createDeployment(
                CreateDeploymentInput(
                    applicationName: "app", deploymentGroupName: "group",
                    revision: RevisionLocation(
                        revisionType: .s3, s3Location: S3Location(bucket: "releases", key: "x.zip", bundleType: .zip, eTag: "0000"))
                )
            ).deploymentId ?? ""
        let adapter = HostCommandAdapter(service: f.plane, artifacts: artifacts, installRoot: f.directory.path + "/host")
        let engine = LifecycleEngine(root: DeploymentRoot(path: f.directory.path + "/agent-root"))
        _ = try await AgentLoop(engine: engine, controlPlane: adapter, instanceName: "web-1").runPending()
        let instance = try f.plane.getDeploymentInstance(GetDeploymentInstanceInput(deploymentId: id, instanceId: "web-1")).instanceSummary
        let download = instance?.lifecycleEvents?.first { $0.lifecycleEventName == "DownloadBundle" }
        #expect(download?.status == .failed)
        #expect(download?.diagnostics?.message?.contains("Expected deployment artifact bundle etag 0000") == true)
    }
}
