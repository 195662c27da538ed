import DeployStore
import Foundation
import GRDB

extension SQLiteTransaction: TransferableTransaction {
    func deploymentRecord(id: String) throws -> DeploymentRecord? {
        try Row.fetchOne(
            try db.cachedStatement(sql: "SELECT id, application_id, group_id, create_time, info FROM deployments WHERE id = ?"), arguments: [id]
        ).map {
            DeploymentRecord(
                id: $0["id"], applicationId: $0["application_id"], groupId: $0["group_id"],
                createTime: Date(timeIntervalSince1970: $0["create_time"]),
                info: try decodedDeployments.decode($0["info"]))
        }
    }

    func importEvent(_ event: EventRecord) throws {
        // AUTOINCREMENT: an explicit sequence moves sqlite_sequence past it.
        try db.cachedStatement(
            sql: "INSERT INTO events (sequence, time, deployment_id, application_name, instance_name, body) VALUES (?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [event.sequence, event.time, event.deploymentId, event.applicationName, event.instanceName, event.body])
    }

    func advanceEventSequence(to sequence: Int64) throws {
        try db.execute(
            sql: "INSERT INTO sqlite_sequence (name, seq) SELECT 'events', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events')")
        try db.execute(sql: "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'events'", arguments: [sequence])
    }

    func importDelivery(_ record: DeliveryRecord) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO deliveries (id, message_id, type, topic_arn, subscription_arn, endpoint, subject, message, created, state, attempts,
                    next_attempt, last_error, origin, deployment_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            record.id, record.messageId, record.type, record.topicArn, record.subscriptionArn, record.endpoint, record.subject, record.message,
            record.created, record.state, record.attempts, record.nextAttempt, record.lastError, record.origin, record.deploymentId,
        ])
    }

    func isEmpty() throws -> Bool {
        let tables = ["applications", "deployment_configs", "instances", "access_keys", "deployments", "alarms", "topics", "events"]
        for table in tables where try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(table))") ?? false {
            return false
        }
        return true
    }

    func eraseAll() throws {
        // Children first, though ON DELETE CASCADE would take most of them.
        for table in [
            "delivery_attempts", "deliveries", "subscriptions", "topics", "alarms", "events", "agent_contacts", "agent_leases", "access_keys",
            "host_commands", "deployment_targets", "deployment_target_counts", "deployments", "revisions", "resource_tags", "instance_tags",
            "instances", "deployment_groups", "deployment_configs", "applications",
        ] {
            try db.execute(sql: "DELETE FROM \(table)")
        }
        try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name IN ('events', 'deliveries')")
    }
}
