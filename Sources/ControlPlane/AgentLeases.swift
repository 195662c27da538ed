import DeployModel
import DeployStore
import Foundation
import GRDB
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
        try state.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT * FROM agent_leases WHERE instance_name = ?", arguments: [instanceName]) {
                let holder: String = row["holder"]
                let host: String = row["host_name"]
                let pid: Int32 = row["pid"]
                let expires: Double = row["expires"]
                let started: Double = row["started"]
                // On this host the holder's process says whether it runs (a hook may keep it from renewing for hours);
                // from another host only the expiry can.
                let alive = host == agent.hostName ? (kill(pid, 0) == 0 || errno == EPERM) : expires > stamp
                if holder != agent.holder, alive {
                    let since = Timestamp.format(Date(timeIntervalSince1970: started))
                    throw ServiceError(
                        "AgentAlreadyRunningException",
                        "Another agent (pid \(pid) on \(host), running since \(since)) already deploys to the instance \(instanceName) from this state file. Stop it first, or start this one with another --instance-name."
                    )
                }
                let keepStart = holder == agent.holder ? started : stamp
                try db.execute(
                    sql: "UPDATE agent_leases SET holder = ?, host_name = ?, pid = ?, started = ?, expires = ? WHERE instance_name = ?",
                    arguments: [agent.holder, agent.hostName, agent.pid, keepStart, stamp + Self.agentLeaseSeconds, instanceName])
            } else {
                try db.execute(
                    sql: "INSERT INTO agent_leases (instance_name, holder, host_name, pid, started, expires) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [instanceName, agent.holder, agent.hostName, agent.pid, stamp, stamp + Self.agentLeaseSeconds])
            }
        }
    }

    /// Gives the lease back (a stopping agent), if this agent still holds it.
    public func releaseAgentLease(instanceName: String, agent: AgentIdentity) throws {
        try state.write { db in
            try db.execute(sql: "DELETE FROM agent_leases WHERE instance_name = ? AND holder = ?", arguments: [instanceName, agent.holder])
        }
    }
}
