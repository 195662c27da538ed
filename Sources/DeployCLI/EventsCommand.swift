import ArgumentParser
import ControlPlane
import DeployClient
import DeployModel
import Foundation

/// `deployctl events`: the event stream, from the state file or a server.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        _superCommandName: "deployctl",
        abstract: "Print the deployment event stream: every deployment, instance and lifecycle-event state change (deployctl extension).",
        discussion: """
            Each event is AWS's EventBridge event for CodeDeploy ("CodeDeploy Deployment State-change Notification", \
            "CodeDeploy Instance State-change Notification"; deployctl adds "deployctl Lifecycle Event State-change \
            Notification" and the states CREATED and ROLLBACK), written in the same transaction as the change it announces \
            and numbered in order. --output json prints {"events": [{"sequence": N, "event": {...}}]}, or with --follow one \
            such object per line; text prints one line per event. Resume with --after the last sequence seen. Against a \
            server (--endpoint-url) any key that may read can follow it; browsers and scripts can also read GET /events \
            (Server-Sent Events).
            """)

    @Option(name: .customLong("deployment-id"), help: ArgumentHelp("Only this deployment's events.", valueName: "id"))
    var deploymentId: String?

    @Option(name: .customLong("application-name"), help: ArgumentHelp("Only this application's events.", valueName: "name"))
    var applicationName: String?

    @Option(
        name: .customLong("since"),
        help: ArgumentHelp("Only events at or after this time: ISO 8601 (2026-12-07T10:00:00Z) or epoch seconds.", valueName: "time"))
    var since: String?

    @Option(name: .customLong("after"), help: ArgumentHelp("Only events after this sequence number (to resume).", valueName: "sequence"))
    var after: Int64 = 0

    @Flag(name: .customLong("follow"), help: "Keep printing events as they happen, until interrupted.")
    var follow = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if after < 0 { throw ValidationError("--after must be 0 or a sequence number.") }
        if let since, Self.parseTime(since) == nil {
            throw ValidationError("--since '\(since.prefix(40))': expected ISO 8601 (2026-12-07T10:00:00Z) or epoch seconds.")
        }
    }

    static func parseTime(_ text: String) -> Date? {
        guard let date = Timestamp.parse(text), date.timeIntervalSince1970 >= 0 else { return nil }
        return date
    }

    func run() async throws {
        let source = try global.openEventSource()
        var query = StreamEventQuery(
            after: after, deploymentId: deploymentId, applicationName: applicationName, since: since.flatMap(Self.parseTime))
        if !follow {
            let found = try await CLIFailure.calling("ListEvents") { try await source.listEvents(query) }
            let text =
                global.output == .text
                ? found.map(Self.line).joined()
                : try global.render(.members([("events", .array(found.map(\.json)))]), operation: "ListEvents")
            if !text.isEmpty { try StandardStreams.out(text) }
            return
        }
        query.wait = StreamEventQuery.maxWait
        while true {
            let found = try await CLIFailure.calling("ListEvents") { try await source.listEvents(query) }
            for event in found {
                try StandardStreams.out(global.output == .text ? Self.line(event) : event.json.compact() + "\n")
            }
            if let last = found.last { query.after = last.sequence }
        }
    }

    /// `12 2026-12-07T10:00:01Z d-ABC web/prod START`, with the instance and the lifecycle event when there are.
    static func line(_ event: StreamEvent) -> String {
        let body = event.event
        let detail = body["detail"]
        var words = [String(event.sequence), body["time"]?.stringValue ?? "", detail?["deploymentId"]?.stringValue ?? ""]
        words.append("\(detail?["application"]?.stringValue ?? "")/\(detail?["deploymentGroup"]?.stringValue ?? "")")
        if let instance = detail?["instanceId"]?.stringValue { words.append(instance) }
        if let lifecycle = detail?["lifecycleEvent"]?.stringValue { words.append(lifecycle) }
        words.append(detail?["state"]?.stringValue ?? "")
        if let code = detail?["errorCode"]?.stringValue { words.append("\(code): \(detail?["message"]?.stringValue ?? "")") }
        if let rollback = detail?["rollbackDeploymentId"]?.stringValue { words.append("rollback \(rollback)") }
        return TerminalText.safe(words.joined(separator: " ")) + "\n"
    }
}
