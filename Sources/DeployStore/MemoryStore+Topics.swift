extension MemoryTransaction {
    func topic(arn: String) throws -> TopicRecord? { t.topics[arn] }
    func topics() throws -> [TopicRecord] { t.topics.values.sorted { $0.arn < $1.arn } }
    func insertTopic(_ record: TopicRecord) throws { try change { $0.topics[record.arn] = record } }

    func deleteTopic(arn: String) throws {
        try change { tables in
            tables.topics[arn] = nil
            tables.subscriptions.removeAll { $0.topicArn == arn }
        }
    }

    func subscription(arn: String) throws -> SubscriptionRecord? { t.subscriptions.first { $0.arn == arn } }
    func subscriptions(topicArn: String) throws -> [SubscriptionRecord] { t.subscriptions.filter { $0.topicArn == topicArn } }

    func saveSubscription(_ record: SubscriptionRecord) throws {
        try change { tables in
            if let index = tables.subscriptions.firstIndex(where: { $0.arn == record.arn }) {
                tables.subscriptions[index] = record
            } else {
                tables.subscriptions.append(record)
            }
        }
    }

    func deleteSubscription(arn: String) throws { try change { $0.subscriptions.removeAll { $0.arn == arn } } }

    func insertDelivery(_ record: DeliveryRecord) throws -> Int64 {
        var id: Int64 = 0
        try change { tables in
            tables.lastDeliveryId += 1
            id = tables.lastDeliveryId
            var stored = record
            stored.id = id
            tables.deliveries[id] = stored
        }
        return id
    }

    func updateDelivery(_ record: DeliveryRecord) throws { try change { $0.deliveries[record.id] = record } }

    func dueDeliveries(now: Double, limit: Int) throws -> [DeliveryRecord] {
        Array(t.deliveries.values.filter { $0.state == "pending" && $0.nextAttempt <= now }.sorted { $0.id < $1.id }.prefix(limit))
    }

    func firstPendingDelivery(subscriptionArn: String) throws -> Int64? {
        t.deliveries.values.filter { $0.state == "pending" && $0.subscriptionArn == subscriptionArn }.map(\.id).min()
    }

    func nextDeliveryTime() throws -> Double? { t.deliveries.values.filter { $0.state == "pending" }.map(\.nextAttempt).min() }

    func deliveries(_ filter: DeliveryFilter) throws -> [DeliveryRecord] {
        let found = t.deliveries.values.filter { record in
            (filter.before.map { record.id < $0 } ?? true) && (filter.state.map { record.state == $0 } ?? true)
                && (filter.topicArn.map { record.topicArn == $0 } ?? true) && (filter.deploymentId.map { record.deploymentId == $0 } ?? true)
        }
        return Array(found.sorted { $0.id > $1.id }.prefix(filter.limit))
    }

    func deliveryStateCounts() throws -> [String: Int] {
        t.deliveries.values.reduce(into: [:]) { counts, record in counts[record.state, default: 0] += 1 }
    }

    func insertDeliveryAttempt(_ record: DeliveryAttemptRecord) throws {
        try change { tables in
            tables.deliveryAttempts.removeAll { $0.deliveryId == record.deliveryId && $0.attempt == record.attempt }
            tables.deliveryAttempts.append(record)
        }
    }

    func deleteDeliveryAttempt(deliveryId: Int64, attempt: Int) throws {
        try change { $0.deliveryAttempts.removeAll { $0.deliveryId == deliveryId && $0.attempt == attempt } }
    }

    func deliveryAttempts(deliveryId: Int64) throws -> [DeliveryAttemptRecord] {
        t.deliveryAttempts.filter { $0.deliveryId == deliveryId }.sorted { $0.attempt < $1.attempt }
    }

    func deleteFinishedDeliveries(before time: Double, limit: Int) throws -> Int {
        let gone = t.deliveries.values.filter { $0.state != "pending" && $0.created < time }.sorted { $0.id < $1.id }.prefix(limit).map(\.id)
        if gone.isEmpty { return 0 }
        let ids = Set(gone)
        try change { tables in
            for id in ids { tables.deliveries[id] = nil }
            tables.deliveryAttempts.removeAll { ids.contains($0.deliveryId) }
        }
        return ids.count
    }
}
