import ArtifactStore
import Bundles
import DeployModel
import Foundation
import HostCommandModel

/// The agent's side of the host-command protocol: turns a ``HostCommand`` of any ``HostCommandService`` into what
/// the engine runs (an ``AgentCommand``), and an ``EventResult`` into the ``HostCommandReport`` the service records.
///
/// The bundle is resolved here, on the agent's host: from the artifact store the agent can read (a local agent on
/// the state file's host); a remote agent will fetch the S3 object instead (issue 11).
public struct HostCommandAdapter: AgentControlPlane {
    public let service: any HostCommandService
    public let artifacts: (any ArtifactStorage)?
    /// A remote agent's way to the bundle (instead of `artifacts`).
    public let fetcher: (any BundleFetching)?
    public let installRoot: String?

    public init(service: any HostCommandService, artifacts: (any ArtifactStorage)?, fetcher: (any BundleFetching)? = nil, installRoot: String?) {
        self.service = service
        self.artifacts = artifacts
        self.fetcher = fetcher
        self.installRoot = installRoot
    }

    public func poll(instanceName: String) async throws -> AgentCommand? {
        guard let command = try await service.pollHostCommand(instanceName: instanceName) else { return nil }
        var environment = ["DEPLOYCTL_INSTANCE_NAME": instanceName]
        var path: String?
        var type: ArchiveFormat?
        var problem: String?
        switch command.bundle {
        case .s3(let bucket, let key, let version, let eTag, let bundleType):
            environment["BUNDLE_BUCKET"] = bucket
            environment["BUNDLE_KEY"] = key
            environment["BUNDLE_VERSION"] = version
            environment["BUNDLE_ETAG"] = eTag
            type = bundleType.flatMap { ArchiveFormat(rawValue: $0) }
            if let fetcher {
                // Only DownloadBundle reads the bundle: other events do not fetch it.
                if command.lifecycleEvent == "DownloadBundle" {
                    do {
                        path = try await fetcher.fetch(bucket: bucket, key: key, version: version, eTag: eTag, deploymentId: command.deploymentId)
                    } catch {
                        problem = "\(error)"
                    }
                }
            } else {
                (path, problem) = resolve(bucket: bucket, key: key, version: version, eTag: eTag)
            }
        case .unsupported(let reason):
            problem = reason
        }
        let spec = DeploymentSpec(
            deploymentId: command.deploymentId, applicationName: command.applicationName, deploymentGroupName: command.deploymentGroupName,
            deploymentGroupId: command.deploymentGroupId, bundle: .archive(path: path ?? "/nonexistent", type: type),
            fileExistsBehavior: command.fileExistsBehavior.flatMap { FileExistsBehavior(rawValue: $0) },
            ignoreApplicationStopFailures: command.ignoreApplicationStopFailures, installRoot: installRoot,
            revisionEnvironment: environment.compactMapValues { $0 })
        return AgentCommand(id: command.id, event: command.lifecycleEvent, spec: spec, bundleProblem: problem)
    }

    /// The bundle's path in the artifact store, or why it cannot be used (missing, another eTag).
    func resolve(bucket: String, key: String, version: String?, eTag: String?) -> (String?, String?) {
        guard let artifacts else { return (nil, "this agent cannot reach the artifact store holding s3://\(bucket)/\(key)") }
        do {
            let object = try artifacts.head(bucket: bucket, key: key, version: version)
            if let eTag, !eTag.isEmpty, eTag != object.eTag {
                return (nil, "Expected deployment artifact bundle etag \(eTag) but was actually \(object.eTag)")
            }
            return (object.path, nil)
        } catch {
            return (nil, "The bundle s3://\(bucket)/\(key) is not in the artifact store (\(error)); push it first.")
        }
    }

    public func acknowledge(_ id: String, expectedSeconds: Int) async throws {
        try await service.acknowledgeHostCommand(id: id, expectedSeconds: expectedSeconds)
    }

    public func note(_ id: String, _ message: String) async throws {
        try await service.postHostCommandUpdate(id: id, note: message)
    }

    public func complete(_ id: String, result: EventResult) async throws {
        try await service.completeHostCommand(id: id, report: Self.report(result))
    }

    /// What the service records for an event: the API's error code (OutputsLeftOpen as ScriptFailed with its own
    /// message), and a failure that ignoreApplicationStopFailures let through as a success that says so.
    public static func report(_ result: EventResult) -> HostCommandReport {
        let status: HostCommandStatus =
            switch result.status {
            case .failed: .failed
            case .skipped: .skipped
            default: .succeeded
            }
        let d = result.diagnostics
        let message = d.map { result.ignoredFailure ? "Ignored (ignoreApplicationStopFailures): \($0.message)" : $0.message }
        return HostCommandReport(
            status: status, errorCode: result.ignoredFailure ? "Success" : d?.code.apiCode.rawValue, scriptName: d?.scriptName, message: message,
            logTail: d?.logTail)
    }
}
