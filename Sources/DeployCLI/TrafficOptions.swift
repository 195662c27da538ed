import ArgumentParser
import TrafficControl

/// `--load-balancer` and its timeouts: where the balancers of deployments with traffic control are, for the process
/// that drives them (`deployctl server`, or `deployctl agent run` on a state file).
struct TrafficOptions: ParsableArguments {
    @Option(
        name: .customLong("load-balancer"),
        help: ArgumentHelp(
            "A load balancer a deployment group names in loadBalancerInfo (an HAProxy backend) and its runtime API: NAME=unix:/run/haproxy/admin.sock or NAME=tcp:HOST:PORT (the stats socket at level admin). Repeat it for more; the same NAME twice is an HA pair, and both nodes are changed.",
            valueName: "name=address"))
    var loadBalancers: [String] = []

    @Option(
        name: .customLong("traffic-drain-timeout"),
        help: ArgumentHelp(
            "Seconds BlockTraffic waits for a drained server's sessions to end before putting it in maintenance anyway (0-3600, default 300, AWS's deregistration delay).",
            valueName: "seconds"))
    var drainTimeout: Double = 300

    @Option(
        name: .customLong("traffic-health-timeout"),
        help: ArgumentHelp(
            "Seconds AllowTraffic waits for the server's HAProxy health checks to pass before the event fails (1-3600, default 3600, as AWS).",
            valueName: "seconds"))
    var healthTimeout: Double = 3600

    func validate() throws {
        try NumberRange.check("--traffic-drain-timeout", drainTimeout, 0...3600)
        try NumberRange.check("--traffic-health-timeout", healthTimeout, 1...3600)
        _ = try balancers()
    }

    func balancers() throws -> Balancers {
        var balancers: Balancers
        do {
            balancers = try Balancers(parsing: loadBalancers)
        } catch {
            throw ValidationError(error.description)
        }
        balancers.drainTimeout = drainTimeout
        balancers.healthTimeout = healthTimeout
        return balancers
    }
}
