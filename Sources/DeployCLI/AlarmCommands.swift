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
            (overrideAlarmConfiguration on create-deployment lets a fix through). Give one kind:

              --manual                                   its state is only set by hand (set-alarm-state)
              --prometheus-query Q --prometheus-url URL  in ALARM when the query returns a non-empty result for --for seconds
              --http-url URL                             in ALARM after --failures answers in a row that are not --expect-status

            Prometheus and HTTP alarms are evaluated while a deployment watches them: by deployctl server (every \
            --alarm-interval seconds), or, on a state file, by the create-deployment --wait or wait deployment-successful that \
            follows the deployment. A Prometheus that cannot be read makes the alarm INSUFFICIENT_DATA and stops the deployments \
            that do not set ignorePollAlarmFailure. set-alarm-state forces any alarm until its next evaluation. Redefining an \
            alarm keeps its state. Works on the state file or with --endpoint-url (admin keys).

            Example:
              deployctl put-alarm --alarm-name errors-high --prometheus-url http://127.0.0.1:9090 \\
                  --prometheus-query 'sum(rate(http_requests_total{code=~"5.."}[1m])) > 1' --for 30
            """)

    @Option(
        name: .customLong("alarm-name"), help: ArgumentHelp("The alarm's name, as alarmConfiguration names it (1-255 characters).", valueName: "name")
    )
    var alarmName: String

    @Flag(name: .customLong("manual"), help: "An alarm whose state is only set by hand (set-alarm-state).")
    var manual = false

    @Option(
        name: .customLong("prometheus-query"),
        help: ArgumentHelp("A PromQL query; in ALARM while it returns a non-empty result.", valueName: "promql"))
    var prometheusQuery: String?

    @Option(name: .customLong("prometheus-url"), help: ArgumentHelp("The Prometheus server the query goes to (http://HOST:9090).", valueName: "url"))
    var prometheusURL: String?

    @Option(
        name: .customLong("for"),
        help: ArgumentHelp("Seconds the query must keep returning a result before the alarm fires (0-86400, default 0).", valueName: "seconds"))
    var forSeconds: Int?

    @Option(name: .customLong("http-url"), help: ArgumentHelp("The URL an HTTP probe alarm GETs.", valueName: "url"))
    var httpURL: String?

    @Option(name: .customLong("expect-status"), help: ArgumentHelp("The status a healthy answer has (default 200).", valueName: "code"))
    var expectStatus: Int?

    @Option(
        name: .customLong("failures"),
        help: ArgumentHelp("Bad answers (or none) in a row before the alarm fires (1-100, default 3).", valueName: "count"))
    var failures: Int?

    @OptionGroup var global: GlobalOptions

    /// The definition the flags give; a usage error unless they name exactly one kind with its own flags.
    func definition() throws -> AlarmDefinition {
        let prometheus = prometheusQuery != nil || prometheusURL != nil || forSeconds != nil
        let http = httpURL != nil || expectStatus != nil || failures != nil
        switch (manual, prometheus, http) {
        case (true, false, false):
            return .manual
        case (false, true, false):
            guard prometheusQuery != nil, prometheusURL != nil else {
                throw ValidationError("--prometheus-query and --prometheus-url go together.")
            }
            return AlarmDefinition(kind: .prometheus, prometheusQuery: prometheusQuery, prometheusURL: prometheusURL, forSeconds: forSeconds)
        case (false, false, true):
            guard httpURL != nil else { throw ValidationError("--expect-status and --failures need --http-url.") }
            return AlarmDefinition(kind: .http, httpURL: httpURL, expectStatus: expectStatus, failures: failures)
        default:
            throw ValidationError(
                "Give one kind of alarm: --manual, --prometheus-query with --prometheus-url [--for], or --http-url [--expect-status] [--failures].")
        }
    }

    func validate() throws {
        _ = try definition()
    }

    func run() async throws {
        let registry = try global.openAlarmRegistry()
        let definition = try definition()
        try await CLIFailure.calling("PutAlarm") { try await registry.putAlarm(name: alarmName, definition: definition) }
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
