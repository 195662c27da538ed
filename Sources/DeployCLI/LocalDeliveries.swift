import ControlPlane
import Foundation
import TopicDelivery

/// Trigger deliveries on a state file, where no server sends them: the process that `--wait`s for a deployment and
/// `deployctl agent run` deliver in the background every half second while they run (claims keep two processes from
/// sending the same delivery at once), and the waiter makes one last round when the deployment ends, so its final
/// notification goes out before it exits. `deployctl sns deliver` does the rest.
struct LocalDeliveries {
    let deliverer: NotificationDeliverer

    /// Nil when the commands talk to a server (it delivers) or the state file cannot be opened for writing.
    init?(global: GlobalOptions) {
        guard case .stateFile? = try? global.destination(for: .api), let plane = try? global.openStore() else { return nil }
        deliverer = NotificationDeliverer(plane: plane)
    }

    init(plane: ControlPlane) { deliverer = NotificationDeliverer(plane: plane) }

    func start() -> Task<Void, Never> {
        let deliverer = self.deliverer
        return Task { await deliverer.run { _ in } }
    }

    /// One last round (bounded by the attempt timeout), then the HTTP client closes.
    func finish() async {
        _ = try? await deliverer.deliverDue()
        await deliverer.shutdown()
    }
}
