import DeployStore
import GRDB

extension SQLiteTransaction {
    // MARK: Topics and subscriptions

    func topic(arn: String) throws -> TopicRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM topics WHERE arn = ?"), arguments: [arn]).map {
            TopicRecord(arn: $0["arn"], name: $0["name"], created: $0["created"])
        }
    }

    func topics() throws -> [TopicRecord] {
        try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM topics ORDER BY arn")).map {
            TopicRecord(arn: $0["arn"], name: $0["name"], created: $0["created"])
        }
    }

    func insertTopic(_ record: TopicRecord) throws {
        try db.cachedStatement(sql: "INSERT INTO topics (arn, name, created) VALUES (?, ?, ?)").execute(arguments: [
            record.arn, record.name, record.created,
        ])
    }

    func deleteTopic(arn: String) throws {
        // Its subscriptions go with it (ON DELETE CASCADE).
        try db.cachedStatement(sql: "DELETE FROM topics WHERE arn = ?").execute(arguments: [arn])
    }

    static func subscription(_ row: Row) -> SubscriptionRecord {
        SubscriptionRecord(
            arn: row["arn"], topicArn: row["topic_arn"], protocolName: row["protocol"], endpoint: row["endpoint"], confirmed: row["confirmed"],
            token: row["token"], secret: row["secret"], owner: row["owner"], created: row["created"])
    }

    func subscription(arn: String) throws -> SubscriptionRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM subscriptions WHERE arn = ?"), arguments: [arn]).map(Self.subscription)
    }

    func subscriptions(topicArn: String) throws -> [SubscriptionRecord] {
        try Row.fetchAll(
            try db.cachedStatement(sql: "SELECT * FROM subscriptions WHERE topic_arn = ? ORDER BY created, rowid"), arguments: [topicArn]
        ).map(Self.subscription)
    }

    func saveSubscription(_ record: SubscriptionRecord) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO subscriptions (arn, topic_arn, protocol, endpoint, confirmed, token, secret, owner, created)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (arn) DO UPDATE SET confirmed = excluded.confirmed, token = excluded.token, secret = excluded.secret,
                    endpoint = excluded.endpoint
                """
        ).execute(arguments: [
            record.arn, record.topicArn, record.protocolName, record.endpoint, record.confirmed, record.token, record.secret, record.owner,
            record.created,
        ])
    }

    func deleteSubscription(arn: String) throws {
        try db.cachedStatement(sql: "DELETE FROM subscriptions WHERE arn = ?").execute(arguments: [arn])
    }

    // MARK: Deliveries

    static func delivery(_ row: Row) -> DeliveryRecord {
        DeliveryRecord(
            id: row["id"], messageId: row["message_id"], type: row["type"], topicArn: row["topic_arn"], subscriptionArn: row["subscription_arn"],
            endpoint: row["endpoint"], subject: row["subject"], message: row["message"], created: row["created"], state: row["state"],
            attempts: row["attempts"], nextAttempt: row["next_attempt"], lastError: row["last_error"], origin: row["origin"],
            deploymentId: row["deployment_id"])
    }

    func insertDelivery(_ record: DeliveryRecord) throws -> Int64 {
        try db.cachedStatement(
            sql: """
                INSERT INTO deliveries (message_id, type, topic_arn, subscription_arn, endpoint, subject, message, created, state, attempts,
                    next_attempt, last_error, origin, deployment_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            record.messageId, record.type, record.topicArn, record.subscriptionArn, record.endpoint, record.subject, record.message, record.created,
            record.state, record.attempts, record.nextAttempt, record.lastError, record.origin, record.deploymentId,
        ])
        return db.lastInsertedRowID
    }

    func updateDelivery(_ record: DeliveryRecord) throws {
        try db.cachedStatement(sql: "UPDATE deliveries SET state = ?, attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?").execute(
            arguments: [record.state, record.attempts, record.nextAttempt, record.lastError, record.id])
    }

    func dueDeliveries(now: Double, limit: Int) throws -> [DeliveryRecord] {
        try Row.fetchAll(
            try db.cachedStatement(sql: "SELECT * FROM deliveries WHERE state = 'pending' AND next_attempt <= ? ORDER BY id LIMIT ?"),
            arguments: [now, limit]
        ).map(Self.delivery)
    }

    func firstPendingDelivery(subscriptionArn: String) throws -> Int64? {
        try Int64.fetchOne(
            try db.cachedStatement(sql: "SELECT MIN(id) FROM deliveries WHERE subscription_arn = ? AND state = 'pending'"),
            arguments: [subscriptionArn])
    }

    func nextDeliveryTime() throws -> Double? {
        try Double.fetchOne(try db.cachedStatement(sql: "SELECT MIN(next_attempt) FROM deliveries WHERE state = 'pending'"))
    }

    func deliveries(_ filter: DeliveryFilter) throws -> [DeliveryRecord] {
        var clauses = ["1"]
        var arguments: StatementArguments = []
        if let before = filter.before {
            clauses.append("id < ?")
            _ = arguments.append(contentsOf: [before])
        }
        for (column, value) in [("state", filter.state), ("topic_arn", filter.topicArn), ("deployment_id", filter.deploymentId)] {
            guard let value else { continue }
            clauses.append("\(column) = ?")
            _ = arguments.append(contentsOf: [value])
        }
        _ = arguments.append(contentsOf: [filter.limit])
        let sql = "SELECT * FROM deliveries WHERE \(clauses.joined(separator: " AND ")) ORDER BY id DESC LIMIT ?"
        return try Row.fetchAll(try db.cachedStatement(sql: sql), arguments: arguments).map(Self.delivery)
    }

    func deliveryStateCounts() throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try Row.fetchAll(try db.cachedStatement(sql: "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")) {
            counts[row["state"]] = row["n"]
        }
        return counts
    }

    func insertDeliveryAttempt(_ record: DeliveryAttemptRecord) throws {
        try db.cachedStatement(
            sql: "INSERT OR REPLACE INTO delivery_attempts (delivery_id, attempt, time, milliseconds, status, error) VALUES (?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [record.deliveryId, record.attempt, record.time, record.milliseconds, record.status, record.error])
    }

    func deleteDeliveryAttempt(deliveryId: Int64, attempt: Int) throws {
        try db.cachedStatement(sql: "DELETE FROM delivery_attempts WHERE delivery_id = ? AND attempt = ?").execute(arguments: [deliveryId, attempt])
    }

    func deliveryAttempts(deliveryId: Int64) throws -> [DeliveryAttemptRecord] {
        try Row.fetchAll(
            try db.cachedStatement(sql: "SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt"), arguments: [deliveryId]
        ).map {
            DeliveryAttemptRecord(
                deliveryId: $0["delivery_id"], attempt: $0["attempt"], time: $0["time"], milliseconds: $0["milliseconds"], status: $0["status"],
                error: $0["error"])
        }
    }

    func deleteFinishedDeliveries(before time: Double, limit: Int) throws -> Int {
        // The oldest `limit` rows by id: never a scan of the whole table. Attempts go with them (ON DELETE CASCADE).
        try db.cachedStatement(
            sql: "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries ORDER BY id LIMIT ?) AND state != 'pending' AND created < ?"
        ).execute(arguments: [limit, time])
        return db.changesCount
    }
}
