import Agent
import ArgumentParser

/// The engine flags `deployctl local` and `deployctl agent run` share, and the engine they make.
struct EngineOptions: ParsableArguments {
    @Option(name: .customLong("max-revisions"), help: ArgumentHelp("Deployment directories kept per group (default 5).", valueName: "n"))
    var maxRevisions: Int = 5

    @Option(
        name: .customLong("hook-env"),
        help: ArgumentHelp(
            "Pass this variable of deployctl's own environment to hooks (repeatable). Hooks otherwise get only PATH, LANG, LC_ALL, the CodeDeploy variables and HOME/USER/LOGNAME/SHELL.",
            valueName: "name"))
    var hookEnv: [String] = []

    @Option(
        name: .customLong("max-log-bytes"),
        help: ArgumentHelp("Cap of each deployment's scripts.log; the first and last output are kept (default 64 MiB).", valueName: "bytes"))
    var maxLogBytes: Int64 = ScriptLog.defaultMaxBytes

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
