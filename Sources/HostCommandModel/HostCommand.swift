/// One lifecycle event of one deployment for one instance, as an agent receives it (the host command of
/// CodeDeploy's agent protocol).
public struct HostCommand: Sendable, Equatable {
    public var id: String
    public var deploymentId: String
    public var instanceName: String
    public var lifecycleEvent: String
    public var applicationName: String
    public var deploymentGroupName: String
    public var deploymentGroupId: String
    /// Where the agent fetches the bundle from: never a path on the control plane's host.
    public var bundle: BundleLocation
    /// DISALLOW, OVERWRITE or RETAIN, from the deployment.
    public var fileExistsBehavior: String?
    public var ignoreApplicationStopFailures: Bool

    public init(
        id: String, deploymentId: String, instanceName: String, lifecycleEvent: String, applicationName: String,
        deploymentGroupName: String, deploymentGroupId: String, bundle: BundleLocation, fileExistsBehavior: String? = nil,
        ignoreApplicationStopFailures: Bool = false
    ) {
        self.id = id
        self.deploymentId = deploymentId
        self.instanceName = instanceName
        self.lifecycleEvent = lifecycleEvent
        self.applicationName = applicationName
        self.deploymentGroupName = deploymentGroupName
        self.deploymentGroupId = deploymentGroupId
        self.bundle = bundle
        self.fileExistsBehavior = fileExistsBehavior
        self.ignoreApplicationStopFailures = ignoreApplicationStopFailures
    }
}

/// Where a deployment's bundle is.
public enum BundleLocation: Sendable, Equatable {
    /// An object of the artifact store as S3 names it; the agent checks the eTag when one is given.
    case s3(bucket: String, key: String, version: String?, eTag: String?, bundleType: String?)
    /// A revision the agent cannot fetch (a GitHub or String revision), with the reason.
    case unsupported(String)
}

/// How a host command ended, as the agent reports it.
public enum HostCommandStatus: String, Sendable, Equatable {
    case succeeded = "Succeeded"
    case failed = "Failed"
    case skipped = "Skipped"
}

/// How an agent reports a host command: the status and the diagnostics of the event.
public struct HostCommandReport: Sendable, Equatable {
    public var status: HostCommandStatus
    /// The API's LifecycleErrorCode (`Success`, `ScriptFailed`, …).
    public var errorCode: String?
    public var scriptName: String?
    public var message: String?
    public var logTail: String?

    public init(status: HostCommandStatus, errorCode: String? = nil, scriptName: String? = nil, message: String? = nil, logTail: String? = nil) {
        self.status = status
        self.errorCode = errorCode
        self.scriptName = scriptName
        self.message = message
        self.logTail = logTail
    }
}

/// Who an agent is, for its lease on an instance: a random holder id, the host name and the process id.
public struct AgentIdentity: Sendable, Equatable {
    public var holder: String
    public var hostName: String
    public var pid: Int32

    public init(holder: String, hostName: String, pid: Int32) {
        self.holder = holder
        self.hostName = hostName
        self.pid = pid
    }
}

/// The control plane as an agent sees it (ARCHITECTURE.md): the local control plane implements it over the state
/// file; a remote client will implement it over CodeDeploy's command protocol. Agents poll for the next command of
/// their instance, acknowledge it, run it and complete it; one agent per instance holds a lease while it runs.
public protocol HostCommandService: Sendable {
    /// The next command for the instance, or nil; it is the caller's until acknowledged or expired.
    func pollHostCommand(instanceName: String) async throws -> HostCommand?
    /// The agent started the command and expects it to take at most `expectedSeconds`.
    func acknowledgeHostCommand(id: String, expectedSeconds: Int) async throws
    /// Something the agent wants shown while the command runs (AWS: PostHostCommandUpdate), such as the process
    /// holding a hook's output. Kept until the command completes.
    func postHostCommandUpdate(id: String, note: String) async throws
    /// How the command ended.
    func completeHostCommand(id: String, report: HostCommandReport) async throws
    /// Takes or renews the instance's lease; refuses while another live agent holds it.
    func acquireAgentLease(instanceName: String, agent: AgentIdentity) async throws
    /// Gives the lease back.
    func releaseAgentLease(instanceName: String, agent: AgentIdentity) async throws
}

/// What an agent needs to run any command of one deployment on its host (AWS: the deployment specification the
/// command service hands out for a DeploymentExecutionId).
public struct DeploymentSpecification: Sendable, Equatable {
    public var deploymentId: String
    public var applicationName: String
    public var deploymentGroupName: String
    public var deploymentGroupId: String
    /// `user`, `autoscaling`, `codeDeployRollback`, … (the API's DeploymentCreator).
    public var creator: String
    public var bundle: BundleLocation
    public var fileExistsBehavior: String?
    public var ignoreApplicationStopFailures: Bool

    public init(
        deploymentId: String, applicationName: String, deploymentGroupName: String, deploymentGroupId: String, creator: String,
        bundle: BundleLocation, fileExistsBehavior: String?, ignoreApplicationStopFailures: Bool
    ) {
        self.deploymentId = deploymentId
        self.applicationName = applicationName
        self.deploymentGroupName = deploymentGroupName
        self.deploymentGroupId = deploymentGroupId
        self.creator = creator
        self.bundle = bundle
        self.fileExistsBehavior = fileExistsBehavior
        self.ignoreApplicationStopFailures = ignoreApplicationStopFailures
    }
}

/// Fetches a deployment's bundle onto the agent's host (a remote agent: S3 GetObject from the server), answering
/// the local path of the file.
public protocol BundleFetching: Sendable {
    /// Downloads `bucket/key` (at `version`) to a file for `deploymentId` once and answers its path; a different
    /// `eTag` than the spec's is an error.
    func fetch(bucket: String, key: String, version: String?, eTag: String?, deploymentId: String) async throws -> String
}
