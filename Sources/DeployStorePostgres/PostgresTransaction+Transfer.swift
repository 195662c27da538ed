import DeployStore
import Foundation

extension PostgresTransaction: TransferableTransaction {
    func deploymentRecord(id: String) throws -> DeploymentRecord? {
        try connection.query("SELECT id, application_id, group_id, create_time, info FROM deployments WHERE id = $1", [id]).rows.first.map {
            DeploymentRecord(
                id: $0.string(0), applicationId: $0.string(1), groupId: $0.string(2), createTime: $0.date(3),
                info: try decodedDeployments.decode($0.string(4)))
        }
    }

    func importEvent(_ event: EventRecord) throws {
        try connection.query(
            "INSERT INTO events (sequence, time, deployment_id, application_name, instance_name, body) VALUES ($1, $2, $3, $4, $5, $6)",
            [event.sequence, event.time, event.deploymentId, event.applicationName, event.instanceName, event.body])
        try advanceEventSequence(to: event.sequence)
    }

    func advanceEventSequence(to sequence: Int64) throws {
        try connection.query("UPDATE event_sequence SET last = GREATEST(last, $1::bigint)", [sequence])
        cache.lastEventSequence = nil
    }

    func importDelivery(_ record: DeliveryRecord) throws {
        try connection.query(
            """
            INSERT INTO deliveries (id, message_id, type, topic_arn, subscription_arn, endpoint, subject, message, created, state, attempts,
                next_attempt, last_error, origin, deployment_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            """,
            [
                record.id, record.messageId, record.type, record.topicArn, record.subscriptionArn, record.endpoint, record.subject, record.message,
                record.created, record.state, record.attempts, record.nextAttempt, record.lastError, record.origin, record.deploymentId,
            ])
        // The next id the sequence gives stays above every imported one.
        try connection.query(
            "SELECT setval(pg_get_serial_sequence('deliveries', 'id'), GREATEST($1::bigint, (SELECT MAX(id) FROM deliveries)))",
            [
                record.id
            ])
    }

    func isEmpty() throws -> Bool {
        let tables = ["applications", "deployment_configs", "instances", "access_keys", "deployments", "alarms", "topics", "events"]
        for table in tables where try connection.query("SELECT EXISTS (SELECT 1 FROM \(table))").rows.first?.values[0] == "t" {
            return false
        }
        return true
    }

    func eraseAll() throws {
        try connection.run(
            """
            TRUNCATE delivery_attempts, deliveries, subscriptions, topics, alarms, events, agent_contacts, agent_leases, access_keys,
                host_commands, deployment_target_counts, deployment_targets, deployments, revisions, resource_tags, instance_tags, instances, deployment_groups,
                deployment_configs, applications RESTART IDENTITY;
            UPDATE event_sequence SET last = 0;
            """)
    }
}
