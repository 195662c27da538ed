import DeployModel
import DeployStore
import Foundation

/// Alarms deployments watch (issue 24, part): defined once, server-wide, by name; a deployment group's
/// `alarmConfiguration` (or a deployment's `overrideAlarmConfiguration`) names them. An alarm in ALARM stops the
/// deployments that watch it, as AWS does: Stopped, `ALARM_ACTIVE` with AWS's message, and a rollback when
/// `autoRollbackConfiguration` lists `DEPLOYMENT_STOP_ON_ALARM`.
///
/// A manual alarm's state changes only through `setAlarmState`; a Prometheus or HTTP alarm's also through its
/// evaluations (`recordAlarmEvaluation`, AlarmEvaluations.swift). Either way the change is acted on where it is
/// written: the deployments in flight that watch the alarm stop in the same transaction. A deployment is also
/// checked when it is created: an alarm already in ALARM stops it at once (observed of AWS), and a name no alarm has
/// stops it with `CODEDEPLOY_RESOURCE_CANNOT_BE_FOUND` unless `ignorePollAlarmFailure` (AWS's code for an alarm it
/// cannot read is not known). Rollback deployments are not stopped by alarms, so a rollback can run while the
/// alarm that caused it is still active.
extension ControlPlane: AlarmRegistry {
    public static let alarmStates = ["OK", "ALARM", "INSUFFICIENT_DATA"]

    // The AlarmRegistry face (what the CLI and the server call).
    public func putAlarm(name: String, definition: AlarmDefinition) async throws { try putAlarmNow(name: name, definition: definition) }
    public func describeAlarms(names: [String]?) async throws -> [AlarmDescription] { try describeAlarmsNow(names: names) }
    public func deleteAlarms(names: [String]) async throws { try deleteAlarmsNow(names: names) }
    public func setAlarmState(name: String, state: String, reason: String) async throws -> [String] {
        try setAlarmStateNow(name: name, state: state, reason: reason)
    }

    static func validAlarmName(_ name: String) throws -> String {
        guard !name.isEmpty, name.count <= 255, !name.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw ServiceError("InvalidParameterValue", "An alarm name is 1 to 255 printable characters.")
        }
        return name
    }

    /// An `alarmConfiguration` as AWS checks it: names 1-255 characters, each once, at most 50 (today's AWS quota;
    /// the model's text says 10), and a list when enabled.
    static func validAlarmConfiguration(_ configuration: AlarmConfiguration) throws -> AlarmConfiguration {
        let names = (configuration.alarms ?? []).map { $0.name ?? "" }
        if configuration.enabled == true, names.isEmpty {
            throw ServiceError("InvalidAlarmConfigException", "The alarm configuration is enabled but names no alarm.")
        }
        if let bad = names.first(where: { $0.isEmpty || $0.count > 255 }) {
            throw ServiceError("InvalidAlarmConfigException", "The alarm name '\(bad.prefix(40))' must be 1 to 255 characters.")
        }
        if Set(names).count != names.count {
            throw ServiceError("InvalidAlarmConfigException", "Each alarm name can be used only once in a list.")
        }
        if names.count > 50 {
            throw ServiceError("AlarmsLimitExceededException", "The maximum number of alarms for a deployment group (50) was exceeded.")
        }
        return configuration
    }

    /// Defines (or redefines) an alarm. A new alarm is OK (an evaluated one until its first evaluation); a redefined
    /// one keeps its state.
    public func putAlarmNow(name: String, definition: AlarmDefinition) throws {
        let name = try Self.validAlarmName(name)
        let definition = try Self.validAlarmDefinition(definition)
        let stored = definition.kind == .manual ? "" : String(decoding: try JSONEncoder().encode(definition), as: UTF8.self)
        try store.write { tx in
            let existing = try tx.alarm(named: name)
            try tx.saveAlarm(
                AlarmRecord(
                    name: name, kind: definition.kind.rawValue, state: existing?.state ?? "OK", reason: existing?.reason ?? "Alarm created.",
                    updated: existing?.updated ?? now().timeIntervalSince1970, definition: stored))
        }
    }

    /// Checks what an alarm watches: the members of its kind only, http(s) URLs, bounded numbers.
    static func validAlarmDefinition(_ definition: AlarmDefinition) throws -> AlarmDefinition {
        func url(_ text: String?, _ flag: String) throws -> String {
            guard let text, let parsed = URL(string: text), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host?.isEmpty == false,
                text.count <= 2048
            else {
                throw ServiceError("InvalidParameterValue", "\(flag) must be an http:// or https:// URL, not '\((text ?? "").prefix(100))'.")
            }
            return text
        }
        var checked = AlarmDefinition(kind: definition.kind)
        switch definition.kind {
        case .manual:
            guard definition == .manual else {
                throw ServiceError("InvalidParameterValue", "A manual alarm takes no query or URL: its state is set by set-alarm-state.")
            }
        case .prometheus:
            guard let query = definition.prometheusQuery, !query.isEmpty, query.count <= 4096, definition.httpURL == nil else {
                throw ServiceError(
                    "InvalidParameterValue", "A Prometheus alarm needs --prometheus-query (1 to 4,096 characters) and --prometheus-url.")
            }
            checked.prometheusQuery = query
            checked.prometheusURL = try url(definition.prometheusURL, "--prometheus-url")
            guard (0...86_400).contains(definition.forSeconds ?? 0) else {
                throw ServiceError("InvalidParameterValue", "--for must be 0 to 86,400 seconds.")
            }
            checked.forSeconds = definition.forSeconds ?? 0
        case .http:
            guard definition.prometheusQuery == nil, definition.prometheusURL == nil else {
                throw ServiceError("InvalidParameterValue", "An HTTP alarm takes --http-url, --expect-status and --failures only.")
            }
            checked.httpURL = try url(definition.httpURL, "--http-url")
            guard (100...599).contains(definition.expectStatus ?? 200), (1...100).contains(definition.failures ?? 3) else {
                throw ServiceError("InvalidParameterValue", "--expect-status must be an HTTP status (100 to 599) and --failures 1 to 100.")
            }
            checked.expectStatus = definition.expectStatus ?? 200
            checked.failures = definition.failures ?? 3
        }
        return checked
    }

    static func definition(_ record: AlarmRecord) -> AlarmDefinition {
        guard !record.definition.isEmpty, let decoded = try? JSONDecoder().decode(AlarmDefinition.self, from: Data(record.definition.utf8))
        else { return .manual }
        return decoded
    }

    /// The alarms named (those that exist), or every alarm; by name.
    public func describeAlarmsNow(names: [String]?) throws -> [AlarmDescription] {
        try store.read { tx in
            try tx.alarms().filter { names == nil || names?.contains($0.name) == true }.map {
                AlarmDescription(
                    alarmName: $0.name, kind: $0.kind, stateValue: $0.state, stateReason: $0.reason,
                    stateUpdatedTimestamp: Date(timeIntervalSince1970: $0.updated), definition: Self.definition($0))
            }
        }
    }

    /// Deletes the alarms, all or none: a name that is not an alarm is `ResourceNotFound` (as CloudWatch answers).
    public func deleteAlarmsNow(names: [String]) throws {
        guard !names.isEmpty else { throw ServiceError("InvalidParameterValue", "Name at least one alarm to delete.") }
        try store.write { tx in
            for name in names where try tx.alarm(named: name) == nil {
                throw ServiceError("ResourceNotFound", "The alarm \(name.prefix(255)) does not exist.")
            }
            for name in names { try tx.deleteAlarm(named: name) }
        }
    }

    /// Sets an alarm's state (the flags of `aws cloudwatch set-alarm-state`). ALARM stops, in the same transaction,
    /// every deployment in flight that watches it; answers their ids.
    @discardableResult
    public func setAlarmStateNow(name: String, state: String, reason: String) throws -> [String] {
        guard Self.alarmStates.contains(state) else {
            throw ServiceError("InvalidParameterValue", "--state-value must be OK, ALARM or INSUFFICIENT_DATA, not '\(state.prefix(40))'.")
        }
        guard reason.count <= 1023 else { throw ServiceError("InvalidParameterValue", "--state-reason is at most 1023 characters.") }
        return try store.write { tx in
            guard var alarm = try tx.alarm(named: name) else {
                throw ServiceError("ResourceNotFound", "The alarm \(name.prefix(255)) does not exist.")
            }
            alarm.state = state
            alarm.reason = reason
            alarm.updated = now().timeIntervalSince1970
            try tx.saveAlarm(alarm)
            guard state == "ALARM" else { return [] }
            var stopped: [String] = []
            for (info, _) in try deploymentsWatching(tx, alarm: name) {
                var info = info
                try stopForAlarms(tx, &info, activated: [name])
                stopped.append(info.deploymentId ?? "")
            }
            return stopped
        }
    }

    /// The alarm configuration a deployment watches: its override, else its group's; nil when disabled or empty.
    func watchedAlarms(_ tx: any StoreTransaction, _ info: DeploymentInfo) throws -> (alarms: [String], ignoreFailure: Bool)? {
        var configuration = info.overrideAlarmConfiguration
        if configuration == nil, let appName = info.applicationName, let groupName = info.deploymentGroupName,
            let app = try tx.application(named: appName)
        {
            configuration = try tx.group(applicationId: app.id, name: groupName)?.info.alarmConfiguration
        }
        guard let configuration, configuration.enabled == true else { return nil }
        let names = (configuration.alarms ?? []).compactMap(\.name)
        return names.isEmpty ? nil : (names, configuration.ignorePollAlarmFailure ?? false)
    }

    /// At creation: an alarm already in ALARM, or one that does not exist (unless ignorePollAlarmFailure), stops the
    /// deployment before anything is dispatched.
    func checkAlarmsAtCreation(_ tx: any StoreTransaction, _ info: inout DeploymentInfo) throws {
        guard info.creator != .codeDeployRollback, info.status?.isActive == true, let watched = try watchedAlarms(tx, info) else { return }
        var activated: [String] = []
        var missing: [String] = []
        for name in watched.alarms {
            guard let alarm = try tx.alarm(named: name) else {
                missing.append(name)
                continue
            }
            if alarm.state == "ALARM" { activated.append(name) }
        }
        if !activated.isEmpty {
            try stopForAlarms(tx, &info, activated: activated)
        } else if !missing.isEmpty, !watched.ignoreFailure {
            let error = ErrorInformation(
                code: .codedeployResourceCannotBeFound,
                message:
                    "The deployment was stopped because the status of these alarms cannot be retrieved: \(missing.joined(separator: " ")). Define them with deployctl put-alarm, or set ignorePollAlarmFailure."
            )
            _ = try stop(tx, &info, because: error)
        }
    }

    /// Stops the deployment with AWS's `ALARM_ACTIVE` message, and rolls back when asked to on an alarm.
    func stopForAlarms(_ tx: any StoreTransaction, _ info: inout DeploymentInfo, activated: [String]) throws {
        let message =
            "One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the affected deployments have been stopped. Activated alarms: "
            + activated.map { "<\($0)>" }.joined(separator: " ")
        _ = try stop(tx, &info, because: ErrorInformation(code: .alarmActive, message: message))
        try rollBackIfConfigured(tx, info, event: .deploymentStopOnAlarm)
    }
}
