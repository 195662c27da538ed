import Agent
import ArgumentParser

/// The long options of ``EngineOptions``, declared once for ArgumentParser and ``PlainArguments``.
enum EngineOption: String, PlainOptions {
    case maxRevisions = "max-revisions"
    case hookEnv = "hook-env"
    case maxLogBytes = "max-log-bytes"

    var kind: PlainOptionKind { self == .hookEnv ? .repeatable : .value }
}

/// The engine flags `deployctl local` and `deployctl agent run` share, and the engine they make.
///
/// The numeric flags have no ArgumentParser default: their help says the default in words, and ArgumentParser would
/// print it again, formatting it with `String(describing:)` at every start, the first `Int` and `Int64` it prints,
/// whose conformance lookups cost 5% of a trivial `deployctl local`.
struct EngineOptions: ParsableArguments {
    static let defaultMaxRevisions = 5

    @Option(name: EngineOption.maxRevisions.name, help: ArgumentHelp("Deployment directories kept per group (default 5).", valueName: "n"))
    var maxRevisionsGiven: Int?
    var maxRevisions: Int { maxRevisionsGiven ?? Self.defaultMaxRevisions }

    @Option(
        name: EngineOption.hookEnv.name,
        help: ArgumentHelp(
            "Pass this variable of deployctl's own environment to hooks (repeatable). Hooks otherwise get only PATH, LANG, LC_ALL, the CodeDeploy variables and HOME/USER/LOGNAME/SHELL.",
            valueName: "name"))
    var hookEnv: [String] = []

    @Option(
        name: EngineOption.maxLogBytes.name,
        help: ArgumentHelp("Cap of each deployment's scripts.log; the first and last output are kept (default 64 MiB).", valueName: "bytes"))
    var maxLogBytesGiven: Int64?
    var maxLogBytes: Int64 { maxLogBytesGiven ?? ScriptLog.defaultMaxBytes }

    func validate() throws {
        try NumberRange.check("--max-revisions", maxRevisions, 1...10_000)
        try HookEnvironmentNames.check(hookEnv)
        try NumberRange.check("--max-log-bytes", Int(maxLogBytes), Int(ScriptLog.minimumMaxBytes)...Int(Int64.max))
    }

    /// The engine as the binary runs it: this process is the subreaper of its hooks, which run supervised.
    func engine(root: DeploymentRoot) -> LifecycleEngine {
        HookRunner.becomeSubreaper()
        var engine = LifecycleEngine(root: root, runner: HookRunner(supervise: true), maxRevisions: maxRevisions, maxLogBytes: maxLogBytes)
        engine.passedEnvironment = hookEnv
        return engine
    }
}
