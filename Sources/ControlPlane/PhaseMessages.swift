import DeployModel
import Foundation

/// deployctl's timed phases of a deployment — a traffic shift's step, a bake — keep where they stand in the
/// deployment's `deploymentStatusMessages` (which AWS shows as they are): one message per phase, known by its prefix
/// and ending with "since <time>", which the server's clock reads back. No other state is stored for them.
extension DeploymentInfo {
    /// The phase's message (after its prefix) and the time it ends with; nil when there is none.
    func phase(_ prefix: String) -> (text: Substring, since: Date)? {
        guard let message = deploymentStatusMessages?.first(where: { $0.hasPrefix(prefix) }),
            let since = message.split(separator: " ").last.flatMap({ Timestamp.parse(String($0)) })
        else { return nil }
        return (message.dropFirst(prefix.count), since)
    }

    /// Replaces the phase's message with `text` and its time: first among the messages, or last.
    mutating func setPhase(_ prefix: String, _ text: String, since: Date, first: Bool) {
        let message = "\(prefix)\(text) since \(Timestamp.format(since))"
        let others = (deploymentStatusMessages ?? []).filter { !$0.hasPrefix(prefix) }
        deploymentStatusMessages = first ? [message] + others : others + [message]
    }
}
