import Foundation

/// What an alarm watches: nothing (`manual`, set by `set-alarm-state` only), a Prometheus query (in alarm when it
/// returns a non-empty result for `forSeconds`, as a Prometheus alerting rule's `for`), or an HTTP probe (in alarm
/// after `failures` answers in a row that are not `expectStatus`). The same members go over the wire (PutAlarm,
/// DescribeAlarms) and into the state file.
public struct AlarmDefinition: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case manual, prometheus, http
    }

    public var kind: Kind
    public var prometheusQuery: String?
    public var prometheusURL: String?
    public var forSeconds: Int?
    public var httpURL: String?
    public var expectStatus: Int?
    public var failures: Int?

    public init(
        kind: Kind, prometheusQuery: String? = nil, prometheusURL: String? = nil, forSeconds: Int? = nil, httpURL: String? = nil,
        expectStatus: Int? = nil, failures: Int? = nil
    ) {
        self.kind = kind
        self.prometheusQuery = prometheusQuery
        self.prometheusURL = prometheusURL
        self.forSeconds = forSeconds
        self.httpURL = httpURL
        self.expectStatus = expectStatus
        self.failures = failures
    }

    public static let manual = AlarmDefinition(kind: .manual)

    enum CodingKeys: String, CodingKey {
        case kind = "Kind"
        case prometheusQuery = "PrometheusQuery"
        case prometheusURL = "PrometheusUrl"
        case forSeconds = "ForSeconds"
        case httpURL = "HttpUrl"
        case expectStatus = "ExpectStatus"
        case failures = "Failures"
    }
}

/// An alarm as `describe-alarms` shows it (CloudWatch's member names): deployctl's own API, served by the control
/// plane and by `deployctl server` (`Deployctl_20261130.DescribeAlarms`).
public struct AlarmDescription: Codable, Sendable, Equatable {
    public var alarmName: String
    /// `manual`, `prometheus` or `http` (AlarmDefinition).
    public var kind: String
    public var stateValue: String
    public var stateReason: String
    public var stateUpdatedTimestamp: Date
    public var prometheusQuery: String?
    public var prometheusURL: String?
    public var forSeconds: Int?
    public var httpURL: String?
    public var expectStatus: Int?
    public var failures: Int?

    public init(
        alarmName: String, kind: String, stateValue: String, stateReason: String, stateUpdatedTimestamp: Date,
        definition: AlarmDefinition? = nil
    ) {
        self.alarmName = alarmName
        self.kind = kind
        self.stateValue = stateValue
        self.stateReason = stateReason
        self.stateUpdatedTimestamp = stateUpdatedTimestamp
        prometheusQuery = definition?.prometheusQuery
        prometheusURL = definition?.prometheusURL
        forSeconds = definition?.forSeconds
        httpURL = definition?.httpURL
        expectStatus = definition?.expectStatus
        failures = definition?.failures
    }

    enum CodingKeys: String, CodingKey {
        case alarmName = "AlarmName"
        case kind = "Kind"
        case stateValue = "StateValue"
        case stateReason = "StateReason"
        case stateUpdatedTimestamp = "StateUpdatedTimestamp"
        case prometheusQuery = "PrometheusQuery"
        case prometheusURL = "PrometheusUrl"
        case forSeconds = "ForSeconds"
        case httpURL = "HttpUrl"
        case expectStatus = "ExpectStatus"
        case failures = "Failures"
    }
}

/// The output of DescribeAlarms.
public struct DescribeAlarmsOutput: Codable, Sendable, Equatable {
    public var alarms: [AlarmDescription]

    public init(alarms: [AlarmDescription]) { self.alarms = alarms }

    enum CodingKeys: String, CodingKey {
        case alarms = "Alarms"
    }
}

/// Where alarms are defined and set: the control plane, or a server over the network.
public protocol AlarmRegistry: Sendable {
    func putAlarm(name: String, definition: AlarmDefinition) async throws
    func describeAlarms(names: [String]?) async throws -> [AlarmDescription]
    func deleteAlarms(names: [String]) async throws
    /// Answers the deployments the new state stopped.
    func setAlarmState(name: String, state: String, reason: String) async throws -> [String]
}
