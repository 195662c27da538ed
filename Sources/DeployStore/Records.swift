import DeployModel
import Foundation

/// An application as stored.
public struct ApplicationRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var computePlatform: String
    public var createTime: Date

    public init(id: String, name: String, computePlatform: String, createTime: Date) {
        self.id = id
        self.name = name
        self.computePlatform = computePlatform
        self.createTime = createTime
    }
}

/// A deployment group as stored: what the user configured (names, IDs and the last deployments are filled in on
/// read by the control plane).
public struct GroupRecord: Sendable, Equatable {
    public var id: String
    public var applicationId: String
    public var name: String
    public var configName: String
    public var info: DeploymentGroupInfo

    public init(id: String, applicationId: String, name: String, configName: String, info: DeploymentGroupInfo) {
        self.id = id
        self.applicationId = applicationId
        self.name = name
        self.configName = configName
        self.info = info
    }
}

/// A custom deployment configuration as stored (the predefined ones are not stored).
public struct ConfigRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var info: DeploymentConfigInfo
    public var createTime: Date

    public init(id: String, name: String, info: DeploymentConfigInfo, createTime: Date) {
        self.id = id
        self.name = name
        self.info = info
        self.createTime = createTime
    }
}

/// An on-premises instance as stored (its tags are kept apart, see ``TagOwner``).
public struct InstanceRecord: Sendable, Equatable {
    public var name: String
    public var registered: Bool
    public var info: InstanceInfo

    public init(name: String, registered: Bool, info: InstanceInfo) {
        self.name = name
        self.registered = registered
        self.info = info
    }
}

/// A deployment as inserted; afterwards it is read and updated as its `DeploymentInfo`.
public struct DeploymentRecord: Sendable, Equatable {
    public var id: String
    public var applicationId: String
    public var groupId: String
    public var createTime: Date
    public var info: DeploymentInfo

    public init(id: String, applicationId: String, groupId: String, createTime: Date, info: DeploymentInfo) {
        self.id = id
        self.applicationId = applicationId
        self.groupId = groupId
        self.createTime = createTime
        self.info = info
    }
}

/// Which deployments `ListDeployments` wants.
public struct DeploymentFilter: Sendable, Equatable {
    public var groupId: String?
    public var statuses: [String]
    public var createdFrom: Date?
    public var createdTo: Date?

    public init(groupId: String? = nil, statuses: [String] = [], createdFrom: Date? = nil, createdTo: Date? = nil) {
        self.groupId = groupId
        self.statuses = statuses
        self.createdFrom = createdFrom
        self.createdTo = createdTo
    }
}

/// One host command handed to an agent: one lifecycle event of one target, until completed or expired.
public struct HostCommandRecord: Sendable, Equatable {
    public var id: String
    public var deploymentId: String
    public var instanceName: String
    public var eventName: String
    public var acknowledged: Bool
    /// Seconds since 1970 by which the agent must acknowledge (or, once acknowledged, complete) it.
    public var deadline: Double

    public init(id: String, deploymentId: String, instanceName: String, eventName: String, acknowledged: Bool = false, deadline: Double) {
        self.id = id
        self.deploymentId = deploymentId
        self.instanceName = instanceName
        self.eventName = eventName
        self.acknowledged = acknowledged
        self.deadline = deadline
    }
}

/// A registered application revision.
public struct RevisionRecord: Sendable, Equatable {
    public var applicationId: String
    /// The revision's identity (type and location) within its application.
    public var key: String
    public var location: RevisionLocation
    public var description: String?
    public var deploymentGroups: [String]
    public var firstUsedTime: Date?
    public var lastUsedTime: Date?
    public var registerTime: Date

    public init(
        applicationId: String, key: String, location: RevisionLocation, description: String?, deploymentGroups: [String] = [],
        firstUsedTime: Date? = nil, lastUsedTime: Date? = nil, registerTime: Date
    ) {
        self.applicationId = applicationId
        self.key = key
        self.location = location
        self.description = description
        self.deploymentGroups = deploymentGroups
        self.firstUsedTime = firstUsedTime
        self.lastUsedTime = lastUsedTime
        self.registerTime = registerTime
    }
}

/// An agent's lease on an instance.
public struct LeaseRecord: Sendable, Equatable {
    public var instanceName: String
    public var holder: String
    public var hostName: String
    public var pid: Int32
    public var started: Double
    public var expires: Double

    public init(instanceName: String, holder: String, hostName: String, pid: Int32, started: Double, expires: Double) {
        self.instanceName = instanceName
        self.holder = holder
        self.hostName = hostName
        self.pid = pid
        self.started = started
        self.expires = expires
    }
}

/// The last time an agent was heard from for an instance: a call of the command service to `deployctl server`
/// (`address` is where it came from, `agent` its User-Agent), or a local agent renewing its lease (`address` is
/// `local`, `agent` names its process).
public struct AgentContactRecord: Sendable, Equatable {
    public var instanceName: String
    public var lastSeen: Double
    public var address: String
    public var agent: String

    public init(instanceName: String, lastSeen: Double, address: String, agent: String) {
        self.instanceName = instanceName
        self.lastSeen = lastSeen
        self.address = address
        self.agent = agent
    }
}

/// Whose tags: a taggable resource (application, group, config: by ID) or an on-premises instance (by name).
public enum TagOwner: Sendable, Equatable, Hashable {
    case resource(String)
    case instance(String)
}

/// An access key for `deployctl server` (SigV4): who, what secret, whether it works, and the role that bounds it.
public struct AccessKeyRecord: Sendable, Equatable {
    public var accessKeyId: String
    public var userName: String
    public var secretAccessKey: String
    /// `Active` or `Inactive`.
    public var status: String
    /// `admin`, `deployer` or `read-only`.
    public var role: String
    public var createDate: Date

    public init(accessKeyId: String, userName: String, secretAccessKey: String, status: String, role: String, createDate: Date) {
        self.accessKeyId = accessKeyId
        self.userName = userName
        self.secretAccessKey = secretAccessKey
        self.status = status
        self.role = role
        self.createDate = createDate
    }
}

/// One entry of the event stream: a state change a trigger or a watcher can care about, written in the
/// transaction that made the change (an outbox), so nothing committed goes unannounced and nothing rolled back is
/// announced. `body` is the event as JSON (EventBridge's shape, ControlPlane's `DeploymentEvents`).
public struct EventRecord: Sendable, Equatable {
    /// Given by the store when the event is appended (0 before).
    public var sequence: Int64
    /// Seconds since 1970.
    public var time: Double
    public var deploymentId: String
    public var applicationName: String
    /// The instance, for instance and lifecycle-event events.
    public var instanceName: String?
    public var body: String

    public init(sequence: Int64 = 0, time: Double, deploymentId: String, applicationName: String, instanceName: String?, body: String) {
        self.sequence = sequence
        self.time = time
        self.deploymentId = deploymentId
        self.applicationName = applicationName
        self.instanceName = instanceName
        self.body = body
    }
}

/// Which events to read: those after a sequence number, of a deployment or an application, from a time on.
public struct EventFilter: Sendable, Equatable {
    public var after: Int64
    public var deploymentId: String?
    public var applicationName: String?
    /// Seconds since 1970: only events at or after it.
    public var since: Double?
    public var limit: Int

    public init(after: Int64 = 0, deploymentId: String? = nil, applicationName: String? = nil, since: Double? = nil, limit: Int = 1000) {
        self.after = after
        self.deploymentId = deploymentId
        self.applicationName = applicationName
        self.since = since
        self.limit = limit
    }
}

/// An alarm deployments can watch (`alarmConfiguration`): its definition and its state, CloudWatch's three.
public struct AlarmRecord: Sendable, Equatable {
    public var name: String
    /// `manual`: its state is set by hand only (`set-alarm-state`).
    public var kind: String
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    public var state: String
    public var reason: String
    /// Seconds since 1970.
    public var updated: Double
    /// What an evaluated alarm watches: AlarmDefinition as JSON; empty for a manual alarm.
    public var definition: String

    public init(name: String, kind: String, state: String, reason: String, updated: Double, definition: String = "") {
        self.definition = definition
        self.name = name
        self.kind = kind
        self.state = state
        self.reason = reason
        self.updated = updated
    }
}
