import ArgumentParser
import DeployModel
import Testing

@testable import DeployCLI

/// `deployctl local` and `deployctl validate` read a plain command line without ArgumentParser (`PlainArguments`):
/// every line they read must give the command ArgumentParser gives, and every other line must be left to ArgumentParser.
@Suite struct PlainArgumentsTests {
    /// The command as ArgumentParser's own `String(describing:)` shows it: each property wrapper with its state, so a
    /// property the plain reading forgot to set (still a definition) or set differently shows.
    static func shown(_ command: LocalCommand) -> String { String(describing: command) }

    static let plainLines: [[String]] = [
        [],
        ["--bundle-location", "/srv/rev"],
        ["--bundle-location=/srv/rev", "--install-root", ""],
        ["--bundle-location", "rev.tgz", "--type", "tgz", "--file-exists-behavior", "overwrite", "--output", "json"],
        ["--type=directory", "--file-exists-behavior=RETAIN", "--output=text", "--preflight"],
        [
            "--deployment-group", "web", "--deployment-group-name", "Web Fleet", "--application-name", "shop", "--events",
            "BeforeInstall, Install", "--appspec-filename", "appspec.yaml", "--deployment-id", "d-1_a",
        ],
        ["--ignore-application-stop-failures", "--max-revisions", "7", "--max-log-bytes", "2097152"],
        ["--hook-env", "HTTP_PROXY", "--hook-env=NO_PROXY", "--agent-root", "/tmp/root", "--install-root", "/tmp/host"],
        ["--max-revisions", "+3"],
        ["--application-name", "name with = sign", "--bundle-location", "dir with spaces"],
    ]

    @Test(arguments: plainLines)
    func aPlainLineGivesWhatArgumentParserGives(_ line: [String]) throws {
        let plain = try #require(LocalCommand.parsedPlainly(line[...]), "\(line) was not read plainly")
        let parsed = try #require(try LocalCommand.parseAsRoot(line) as? LocalCommand)
        #expect(Self.shown(plain) == Self.shown(parsed), "\(line)")
    }

    @Test func theComparisonSeesAnUnsetProperty() throws {
        var partial = LocalCommand()
        partial.bundleLocation = "."
        let parsed = try #require(try LocalCommand.parseAsRoot([]) as? LocalCommand)
        #expect(Self.shown(partial) != Self.shown(parsed))
        #expect(Self.shown(partial).contains("_type: Option(*definition*)"))
    }

    static let otherLines: [[String]] = [
        ["--help"], ["-h"], ["help"], ["--version"], ["rev"], ["--"], ["--bogus", "x"], ["--bundle-location"],
        ["--bundle-location", "-x"], ["--bundle-location", "--agent-root", "/r"], ["--type", "zipp"], ["--type", "zip", "--type", "tar"],
        ["--output", "yaml"], ["--file-exists-behavior", "KEEP"], ["--preflight=true"], ["--preflight", "--preflight"],
        ["--max-revisions", "0"], ["--max-revisions", "many"], ["--max-log-bytes", "10"], ["--deployment-id", "bad id"],
        ["--deployment-group", "a/b"], ["--events", "Instal"], ["--hook-env", "not a name"], ["--max-revisions=-1"],
        ["--generate-completion-script", "bash"], ["--agent-root="], ["---bundle-location", "x"],
    ]

    @Test(arguments: otherLines)
    func anythingElseIsLeftToArgumentParser(_ line: [String]) {
        #expect(LocalCommand.parsedPlainly(line[...]) == nil, "\(line)")
    }

    static let plainValidateLines: [[String]] = [
        [], ["--source", "."], ["--bundle", "rev.tgz", "--bundle-type", "tgz", "--output", "sarif", "--strict"],
        ["--source=app", "--ignore-hidden-files", "--appspec-filename", "appspec.yaml", "--output=github"],
    ]

    @Test(arguments: plainValidateLines)
    func aPlainValidateLineGivesWhatArgumentParserGives(_ line: [String]) throws {
        let plain = try #require(ValidateCommand.parsedPlainly(line[...]), "\(line) was not read plainly")
        let parsed = try #require(try ValidateCommand.parseAsRoot(line) as? ValidateCommand)
        #expect(String(describing: plain) == String(describing: parsed), "\(line)")
    }

    @Test(arguments: [
        ["--bundle", "a.zip", "--source", "."], ["--bundle-type", "rar"], ["--output", "xml"], ["--strict=1"], ["--help"], ["app"],
        ["--source"],
    ])
    func anyOtherValidateLineIsLeftToArgumentParser(_ line: [String]) {
        #expect(ValidateCommand.parsedPlainly(line[...]) == nil, "\(line)")
    }

    /// The long options ArgumentParser declares for `command` (its `--experimental-dump-help` description), each with
    /// how it takes its value; `--help` and `--version` are ArgumentParser's own.
    static func declaredByArgumentParser(_ command: any ParsableCommand.Type) throws -> [String: PlainOptionKind] {
        let dump = try JSONValue.parse(command._dumpHelp())
        var options: [String: PlainOptionKind] = [:]
        for argument in dump["command"]?["arguments"]?.arrayValue ?? [] {
            let longNames = (argument["names"]?.arrayValue ?? []).filter { $0["kind"]?.stringValue == "long" }.compactMap { $0["name"]?.stringValue }
            for name in longNames where name != "help" && name != "version" {
                let repeating = argument["isRepeating"] == .bool(true)
                options[name] = argument["kind"]?.stringValue == "flag" ? .flag : repeating ? .repeatable : .value
            }
        }
        return options
    }

    static func declaredPlainly(_ declared: [(name: String, kind: PlainOptionKind)]) -> [String: PlainOptionKind] {
        Dictionary(declared.map { ($0.name, $0.kind) }, uniquingKeysWith: { first, _ in first })
    }

    /// The plain reading and ArgumentParser know the same options, each taking its value the same way: an option
    /// added to a command without its `LocalOption` (or `ValidateOption`) case, or with another kind, fails here.
    @Test func thePlainReadersKnowExactlyTheOptionsArgumentParserDeclares() throws {
        let local = try Self.declaredByArgumentParser(LocalCommand.self)
        #expect(local.count == 17)
        #expect(local == Self.declaredPlainly(LocalOption.declared + EngineOption.declared))
        let validate = try Self.declaredByArgumentParser(ValidateCommand.self)
        #expect(validate.count == 7)
        #expect(validate == Self.declaredPlainly(ValidateOption.declared))
    }

    @Test func theComparisonSeesADriftedOption() throws {
        var drifted = Self.declaredPlainly(LocalOption.declared + EngineOption.declared)
        drifted["hook-env"] = .value
        #expect(try Self.declaredByArgumentParser(LocalCommand.self) != drifted)
    }

    @Test func onlyLocalAndValidateAreReadPlainly() {
        #expect(DeployctlCommand.plainCommand(["local", "--bundle-location", "/srv/rev"], path: ["local"], command: LocalCommand.self) != nil)
        #expect(DeployctlCommand.plainCommand(["validate", "--source", "/srv/rev"], path: ["validate"], command: ValidateCommand.self) != nil)
        #expect(DeployctlCommand.plainCommand(["push", "--source", "/srv/rev"], path: ["push"], command: PushCommand.self) == nil)
        #expect(DeployctlCommand.plainCommand(["agent", "run"], path: ["agent", "run"], command: AgentGroupCommand.Run.self) == nil)
        #expect(DeployctlCommand.plainCommand(["local", "--help"], path: ["local"], command: LocalCommand.self) == nil)
    }
}
