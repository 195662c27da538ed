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
        }
    }

    /// Gives the lease back (a stopping agent), if this agent still holds it.
    public func releaseAgentLease(instanceName: String, agent: AgentIdentity) throws {
        try store.write { tx in
            try tx.deleteLease(instance: instanceName, holder: agent.holder)
        }
    }
}
