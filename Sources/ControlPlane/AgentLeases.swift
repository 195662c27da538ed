import DeployModel
import DeployStore
import Foundation
import HostCommandModel

/// One agent per instance (issue 9, item 9): two agents polling for the same instance on one state file would
/// race for its commands and fail each other's events with misleading errors. An agent takes a lease when it
/// starts, renews it while it runs and gives it back when it stops; a lease whose agent died (its process is
/// gone on this host, or it was not renewed in time) is taken over.
extension ControlPlane {
    /// How long a lease lasts without renewal.
    public static let agentLeaseSeconds: TimeInterval = 30

    /// Takes (or renews) the lease on `instanceName`; refuses with `AgentAlreadyRunningException` when another
    /// live agent holds it.
    public func acquireAgentLease(instanceName: String, agent: AgentIdentity) throws {
        let stamp = now().timeIntervalSince1970
        try store.write { tx in
            if let lease = try tx.lease(instance: instanceName) {
                // On this host the holder's process says whether it runs (a hook may keep it from renewing for hours);
                // from another host only the expiry can.
                let alive = lease.hostName == agent.hostName ? (kill(lease.pid, 0) == 0 || errno == EPERM) : lease.expires > stamp
                if lease.holder != agent.holder, alive {
                    let since = Timestamp.format(Date(timeIntervalSince1970: lease.started))
                    throw ServiceError(
                        "AgentAlreadyRunningException",
                        "Another agent (pid \(lease.pid) on \(lease.hostName), running since \(since)) already deploys to the instance \(instanceName) from this state file. Stop it first, or start this one with another --instance-name."
                    )
                }
                let started = lease.holder == agent.holder ? lease.started : stamp
                try tx.saveLease(
                    LeaseRecord(
                        instanceName: instanceName, holder: agent.holder, hostName: agent.hostName, pid: agent.pid, started: started,
                        expires: stamp + Self.agentLeaseSeconds))
            } else {
                try tx.saveLease(
                    LeaseRecord(
                        instanceName: instanceName, holder: agent.holder, hostName: agent.hostName, pid: agent.pid, started: stamp,
                        expires: stamp + Self.agentLeaseSeconds))
            }
            try tx.recordAgentContact(
                AgentContactRecord(
                    instanceName: instanceName, lastSeen: stamp, address: "local", agent: "deployctl agent (pid \(agent.pid) on \(agent.hostName))"))
        }
    }

    /// Gives the lease back (a stopping agent), if this agent still holds it.
    public func releaseAgentLease(instanceName: String, agent: AgentIdentity) throws {
        try store.write { tx in
            try tx.deleteLease(instance: instanceName, holder: agent.holder)
        }
    }

    /// Records calls of remote agents (the server collects them in memory and writes them every few seconds).
    public func recordAgentContacts(_ contacts: [AgentContactRecord]) throws {
        guard !contacts.isEmpty else { return }
        try store.write { tx in
            for contact in contacts { try tx.recordAgentContact(contact) }
        }
    }

    /// Every registered instance's agent (or the named instances'), with contacts not yet written (`pending`, the
    /// server's) taken into account.
    public func agentPresence(instanceNames: [String]? = nil, pending: [AgentContactRecord] = []) throws -> [AgentPresence] {
        let stamp = now().timeIntervalSince1970
        return try store.read { tx in
            var contacts: [String: AgentContactRecord] = [:]
            for contact in try tx.agentContacts() + pending where (contacts[contact.instanceName]?.lastSeen ?? -1) < contact.lastSeen {
                contacts[contact.instanceName] = contact
            }
            let running = try tx.runningEvents()
            var names = try tx.instanceNames(registered: true)
            if let instanceNames {
                let known = Set(names)
                if let unknown = instanceNames.first(where: { !known.contains($0) }) {
                    throw ServiceError("InstanceNotRegisteredException", "The on-premises instance \(unknown.prefix(100)) is not registered.")
                }
                names = instanceNames
            }
            return names.map { name in
                guard let contact = contacts[name] else { return AgentPresence(instanceName: name, status: .never) }
                let status: AgentPresence.Status =
                    running[name] != nil ? .running : stamp - contact.lastSeen <= AgentPresence.onlineWindow ? .online : .quiet
                return AgentPresence(
                    instanceName: name, status: status, lastSeen: Date(timeIntervalSince1970: contact.lastSeen), address: contact.address,
                    agent: contact.agent, lifecycleEventName: running[name])
            }
        }
    }
}

extension ControlPlane: AgentDirectory {
    public func listAgents(instanceNames: [String]?) async throws -> [AgentPresence] {
        try agentPresence(instanceNames: instanceNames)
    }
}
