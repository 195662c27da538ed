/// A failure of the engine outside a script: the deployment root, the bundle, the appspec or the install.
public enum AgentError: Error, Sendable, Equatable, CustomStringConvertible {
    case io(String)
    case bundle(String)
    case appSpec([String])
    case install(String)

    public var description: String {
        switch self {
        case .io(let m), .bundle(let m), .install(let m): return m
        case .appSpec(let findings): return "the appspec is invalid: " + findings.joined(separator: "; ")
        }
    }
}
