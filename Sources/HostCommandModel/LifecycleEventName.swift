/// The server platform's in-place lifecycle events, in the order they run (ARCHITECTURE.md, compatibility facts): the one list the
/// appspec parser, the agent and the control plane all use.
public enum LifecycleEventName {
    public static let all = [
        "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install",
        "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic",
    ]
    /// Events the agent runs itself; an appspec cannot attach scripts to them.
    public static let reserved: Set<String> = ["DownloadBundle", "Install", "BlockTraffic", "AllowTraffic"]
    /// Events an appspec may attach scripts to.
    public static var hookable: [String] { all.filter { !reserved.contains($0) } }
    /// Events that act on a load balancer: Skipped without traffic control; with it, BlockTraffic and AllowTraffic are the
    /// balancer driver's (TrafficSteps.swift) and the other four are hooks the agent runs.
    public static let traffic: Set<String> = [
        "BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic", "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic",
    ]
    /// Events whose scripts come from the last successfully installed revision of the group.
    public static let fromPreviousRevision: Set<String> = ["ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"]
}
