import Foundation

/// An alarm as `describe-alarms` shows it (CloudWatch's member names): deployctl's own API, served by the control
/// plane and by `deployctl server` (`Deployctl_20261130.DescribeAlarms`).
public struct AlarmDescription: Codable, Sendable, Equatable {
    public var alarmName: String
    /// `manual`: set by hand only (`set-alarm-state`).
    public var kind: String
    public var stateValue: String
    public var stateReason: String
    public var stateUpdatedTimestamp: Date

    public init(alarmName: String, kind: String, stateValue: String, stateReason: String, stateUpdatedTimestamp: Date) {
        self.alarmName = alarmName
        self.kind = kind
        self.stateValue = stateValue
        self.stateReason = stateReason
        self.stateUpdatedTimestamp = stateUpdatedTimestamp
    }

    enum CodingKeys: String, CodingKey {
        case alarmName = "AlarmName"
        case kind = "Kind"
        case stateValue = "StateValue"
        case stateReason = "StateReason"
        case stateUpdatedTimestamp = "StateUpdatedTimestamp"
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
    func putAlarm(name: String, kind: String) async throws
    func describeAlarms(names: [String]?) async throws -> [AlarmDescription]
    func deleteAlarms(names: [String]) async throws
    /// Answers the deployments the new state stopped.
    func setAlarmState(name: String, state: String, reason: String) async throws -> [String]
}
