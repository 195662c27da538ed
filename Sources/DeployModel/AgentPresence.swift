import Foundation

/// Whether an instance's agent is there: deployctl's own API beside CodeDeploy's (AWS has no such operation; its
/// shapes stay untouched). Served by the control plane on the state file and by `deployctl server` as
/// `Deployctl_20261130.ListAgents`.
public struct AgentPresence: Codable, Sendable, Equatable {
    /// What the control plane knows of the agent.
    public enum Status: String, Codable, Sendable {
        /// Running a lifecycle event it acknowledged.
        case running = "Running"
        /// Heard from within ``AgentPresence/onlineWindow``.
        case online = "Online"
        /// Heard from, but not for longer than that.
        case quiet = "Quiet"
        /// Registered, never heard from.
        case never = "Never"
    }

    public var instanceName: String
    public var status: Status
    /// The last call of the agent (a poll, acknowledgement or completion; a local agent's lease renewal).
    public var lastSeen: Date?
    /// Where the agent called from: its IP address, or `local` for an agent on the state file.
    public var address: String?
    /// The agent's User-Agent (AWS's agent or deployctl's), or the local agent's process.
    public var agent: String?
    /// The event it is running, when ``status`` is `Running`.
    public var lifecycleEventName: String?

    public init(
        instanceName: String, status: Status, lastSeen: Date? = nil, address: String? = nil, agent: String? = nil,
        lifecycleEventName: String? = nil
    ) {
        self.instanceName = instanceName
        self.status = status
        self.lastSeen = lastSeen
        self.address = address
        self.agent = agent
        self.lifecycleEventName = lifecycleEventName
    }

    /// A live agent is heard from at least this often: a remote one polls again as soon as a held poll ends (at most
    /// 50 s) after its wait between runs, a local one renews its lease every 10 s.
    public static let onlineWindow: TimeInterval = 90

    /// "less than a minute", "3 min", "2 h", "4 days": how long ago, for sentences. Minutes at the finest, so a line
    /// that carries it changes at most once a minute (the `--wait` view prints changed lines when not on a terminal).
    public static func age(_ seconds: TimeInterval) -> String {
        let s = max(0, Int(seconds))
        if s < 60 { return "less than a minute" }
        if s < 7200 { return "\(s / 60) min" }
        if s < 172_800 { return "\(s / 3600) h" }
        return "\(s / 86_400) days"
    }
}

/// The output of ListAgents.
public struct ListAgentsOutput: Codable, Sendable, Equatable {
    public var agents: [AgentPresence]

    public init(agents: [AgentPresence]) { self.agents = agents }
}

/// Where the presence of agents can be asked: the control plane, or a server over the network.
public protocol AgentDirectory: Sendable {
    /// Every registered instance (or those named), by name.
    func listAgents(instanceNames: [String]?) async throws -> [AgentPresence]
}
