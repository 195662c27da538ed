import ArgumentParser
import Testing

@testable import DeployCLI

/// `DeployctlCommand.parseFromSubcommand` starts ArgumentParser at the subcommand a command line names when that subcommand's
/// super-command name is the path above it; these keep every subcommand on that path and check that a parse from the
/// subcommand gives what a parse from the top gives.
@Suite struct CommandTreeTests {
    /// Every command under the root with the words that lead to it.
    static func commands() -> [(path: [String], command: any ParsableCommand.Type)] {
        var found: [(path: [String], command: any ParsableCommand.Type)] = []
        func walk(_ command: any ParsableCommand.Type, _ path: [String]) {
            for sub in command.configuration.subcommands {
                let subPath = path + [sub._commandName]
                found.append((subPath, sub))
                walk(sub, subPath)
            }
        }
        walk(DeployctlCommand.self, [])
        return found
    }

    @Test func everySubcommandNamesThePathAboveIt() {
        let all = Self.commands()
        #expect(all.count > 60)
        for (path, command) in all {
            let above = (["deployctl"] + path.dropLast()).joined(separator: " ")
            #expect(command.configuration._superCommandName == above, "\(path.joined(separator: " "))")
        }
    }

    @Test func aSubcommandParsedFromItselfEqualsTheParseFromTheTop() throws {
        let arguments = ["local", "--bundle-location", "/srv/rev", "--deployment-group", "web", "--events", "Install"]
        let fast = try DeployctlCommand.parseFromSubcommand(arguments, path: ["local"], command: LocalCommand.self)
        let full = try DeployctlCommand.parseAsRoot(arguments)
        let fastLocal = try #require(fast as? LocalCommand)
        let fullLocal = try #require(full as? LocalCommand)
        #expect(fastLocal.bundleLocation == "/srv/rev" && fastLocal.bundleLocation == fullLocal.bundleLocation)
        #expect(String(describing: fastLocal) == String(describing: fullLocal))
    }

    @Test func helpAndErrorsComeFromTheTop() throws {
        // Parsed from `local` alone, `--help` gives ArgumentParser's help command and `--version` is unknown: both go
        // back to the top, where `--version` prints the version and help lists it.
        let version = #expect(throws: (any Error).self) {
            try DeployctlCommand.parseFromSubcommand(["local", "--version"], path: ["local"], command: LocalCommand.self)
        }
        #expect(version.map { DeployctlCommand.fullMessage(for: $0) } == DeployctlCommand.version)
        let help = try DeployctlCommand.parseFromSubcommand(["local", "--help"], path: ["local"], command: LocalCommand.self)
        #expect(!(help is LocalCommand))
        // ArgumentParser's help command names the commands from the top (so its text lists --version).
        #expect(String(describing: help) == String(describing: try DeployctlCommand.parseAsRoot(["local", "--help"])))
        #expect(String(describing: help).contains("DeployctlCommand"))
        let bad = #expect(throws: (any Error).self) {
            try DeployctlCommand.parseFromSubcommand(["local", "--bogus"], path: ["local"], command: LocalCommand.self)
        }
        #expect(bad.map { DeployctlCommand.fullMessage(for: $0) }?.contains("See 'deployctl local --help'") == true)
    }

    @Test func engineDefaultsApplyWhenTheFlagsAreAbsent() throws {
        let absent = try LocalCommand.parse([])
        #expect(absent.engineOptions.maxRevisions == 5 && absent.engineOptions.maxLogBytes == 64 << 20)
        let given = try LocalCommand.parse(["--max-revisions", "2", "--max-log-bytes", "1048576"])
        #expect(given.engineOptions.maxRevisions == 2 && given.engineOptions.maxLogBytes == 1 << 20)
    }
}
