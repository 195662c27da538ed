import ArgumentParser
import ControlPlane
import DeployModel
import Foundation

/// `deployctl put-alarm`: defines an alarm deployment groups can watch by name.
struct PutAlarmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put-alarm",
        _superCommandName: "deployctl",
        abstract: "Define an alarm that deployment groups' alarmConfiguration can name (deployctl extension).",
        discussion: """
            An alarm in ALARM stops the deployments that watch it (Stopped, ALARM_ACTIVE, AWS's message) and rolls them back \
            when autoRollbackConfiguration lists DEPLOYMENT_STOP_ON_ALARM; one already in ALARM stops a new deployment at once \
            (overrideAlarmConfiguration on create-deployment lets a fix through). This version has manual alarms only: their \
            state is set with set-alarm-state. Redefining an alarm keeps its state. Works on the state file or with \
            --endpoint-url (admin keys).
            """)

    @Option(
        name: .customLong("alarm-name"), help: ArgumentHelp("The alarm's name, as alarmConfiguration names it (1-255 characters).", valueName: "name")
    )
    var alarmName: String

    @Flag(name: .customLong("manual"), help: "An alarm whose state is only set by hand (set-alarm-state). Required in this version.")
    var manual = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if !manual {
            throw ValidationError("--manual is required: only manual alarms exist in this version (Prometheus and HTTP alarms are not built yet).")
        }
    }

    func run() async throws {
        let registry = try global.openAlarmRegistry()
        try await CLIFailure.calling("PutAlarm") { try await registry.putAlarm(name: alarmName, kind: "manual") }
    }
}

/// `deployctl describe-alarms`.
struct DescribeAlarmsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe-alarms",
        _superCommandName: "deployctl",
        abstract: "Show alarms and their state: OK, ALARM or INSUFFICIENT_DATA (deployctl extension; CloudWatch's member names).")

    @Option(
        name: .customLong("alarm-names"), parsing: .upToNextOption,
        help: ArgumentHelp("Only these alarms (names that are not alarms are left out).", valueName: "name"))
    var alarmNames: [String] = []

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let registry = try global.openAlarmRegistry()
        let names = alarmNames.isEmpty ? nil : alarmNames
        let alarms = try await CLIFailure.calling("DescribeAlarms") { try await registry.describeAlarms(names: names) }
        let output = try JSONValueEncoder(dateEncoding: .display).encode(DescribeAlarmsOutput(alarms: alarms))
        try StandardStreams.out(try global.render(output, operation: "DescribeAlarms"))
    }
}

/// `deployctl delete-alarms`.
struct DeleteAlarmsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-alarms",
        _superCommandName: "deployctl",
        abstract: "Delete alarms, all or none: a name that is not an alarm is ResourceNotFound (deployctl extension).")

    @Option(name: .customLong("alarm-names"), parsing: .upToNextOption, help: ArgumentHelp("The alarms to delete.", valueName: "name"))
    var alarmNames: [String] = []

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if alarmNames.isEmpty { throw ValidationError("--alarm-names is required.") }
    }

    func run() async throws {
        let registry = try global.openAlarmRegistry()
        try await CLIFailure.calling("DeleteAlarms") { try await registry.deleteAlarms(names: alarmNames) }
    }
}

/// `deployctl set-alarm-state`: the flags of `aws cloudwatch set-alarm-state`.
struct SetAlarmStateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-alarm-state",
        _superCommandName: "deployctl",
        abstract: "Set an alarm's state, as aws cloudwatch set-alarm-state does; ALARM stops the deployments watching it (deployctl extension).",
        discussion: "Prints the deployments the new state stopped: {\"StoppedDeployments\": [...]}.")

    @Option(name: .customLong("alarm-name"), help: ArgumentHelp("The alarm.", valueName: "name"))
    var alarmName: String

    @Option(name: .customLong("state-value"), help: ArgumentHelp("OK, ALARM or INSUFFICIENT_DATA.", valueName: "state"))
    var stateValue: String

    @Option(name: .customLong("state-reason"), help: ArgumentHelp("Why, in words (at most 1023 characters).", valueName: "text"))
    var stateReason: String

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if !ControlPlane.alarmStates.contains(stateValue) {
            throw ValidationError("--state-value must be OK, ALARM or INSUFFICIENT_DATA.")
        }
    }

    func run() async throws {
        let registry = try global.openAlarmRegistry()
        let stopped = try await CLIFailure.calling("SetAlarmState") {
            try await registry.setAlarmState(name: alarmName, state: stateValue, reason: stateReason)
        }
        let output = JSONValue.members([("StoppedDeployments", .array(stopped.map { .string($0) }))])
        try StandardStreams.out(try global.render(output, operation: "SetAlarmState"))
    }
}
