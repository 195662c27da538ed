import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `deployctl`: the root command. Its subcommands mirror `aws deploy`.
public struct DeployctlCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "deployctl",
        abstract: "Self-hosted deployments for servers you own, with the commands, flags and JSON of `aws deploy`.",
        discussion: """
            State lives in one SQLite file (--state, $DEPLOYCTL_STATE, or a per-user default). Exit codes: 0 success, \
            252 bad usage or invalid parameters, 254 the operation refused the request, 255 anything else.
            """,
        version: version,
        subcommands: operationCommands + [
            PushCommand.self, ValidateCommand.self, BundleCommand.self, LocalCommand.self, AgentGroupCommand.self, WaitCommand.self, LogsCommand.self,
            EventsCommand.self, PutAlarmCommand.self, DescribeAlarmsCommand.self, DeleteAlarmsCommand.self, SetAlarmStateCommand.self,
            CreateAccessKeyCommand.self, ListAccessKeysCommand.self, UpdateAccessKeyCommand.self, DeleteAccessKeyCommand.self, ServerCommand.self,
            RegisterCommand.self, DeregisterCommand.self, InstallCommand.self, UninstallCommand.self, TopicGroupCommand.self, MigrateCommand.self,
        ]
    )

    public init() {}

    /// What `deployctl --version` prints.
    public static let version = "0.1.0"

    /// Answers `deployctl --version` alone without parsing: ArgumentParser reflects over the command tree, and each
    /// first dynamic cast makes the Swift runtime scan every protocol conformance in the binary (13,600 of them),
    /// most of the 9 ms this took. Returns the exit status when it answered.
    public static func answeredImmediately(_ arguments: [String]) -> Int32? {
        guard arguments.count == 2, arguments[1] == "--version" else { return nil }
        do {
            try StandardStreams.out(version + "\n")
            return 0
        } catch {
            StandardStreams.err("deployctl: \(error)\n")
            return 255
        }
    }

    /// Swift would repair invalid UTF-8 in arguments into U+FFFD and store that; refuse it instead, naming it.
    static func checkArgumentsAreUTF8() throws {
        for index in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[index] else { continue }
            if String(validatingCString: raw) == nil {
                let previous = index > 1 ? CommandLine.unsafeArgv[index - 1].flatMap { String(validatingCString: $0) } : nil
                let which = previous.map { $0.hasPrefix("-") ? "the value of \($0)" : "argument \(index)" } ?? "argument \(index)"
                throw CLIFailure.usage("\(which) is not valid UTF-8 text; names and values must be UTF-8")
            }
        }
    }

    /// `--next-token -5` or `--timeout -1` as the aws CLI (argparse) reads them: a value that looks like a negative
    /// number belongs to the option before it, so it reaches the range check instead of being taken for a flag.
    static func joiningNegativeNumbers(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                result += arguments[index...]
                break
            }
            if argument.hasPrefix("--"), !argument.contains("="), index + 1 < arguments.count,
                arguments[index + 1].count > 1, arguments[index + 1].hasPrefix("-"), Double(arguments[index + 1]) != nil
            {
                result.append(argument + "=" + arguments[index + 1])
                index += 2
                continue
            }
            result.append(argument)
            index += 1
        }
        return result
    }

    /// The command line parsed from the subcommand it names, as ArgumentParser's root, when that subcommand carries the
    /// words before it as its super-command name (every deployctl subcommand does; CommandTreeTests checks). That skips
    /// what ArgumentParser does only at the top: reflecting over two more commands to look for
    /// `--generate-completion-script`, about 1 ms of a trivial `deployctl local` (issue 12). Anything but a clean parse
    /// (an error, `--help` or `help`, `--version`, a completion request) is parsed again from the top, so that it is answered,
    /// and its usage worded, exactly as before.
    static func parseFromSubcommand(_ arguments: [String], path: [String], command: any ParsableCommand.Type) throws -> any ParsableCommand {
        let above = ([configuration.commandName ?? "deployctl"] + path.dropLast()).joined(separator: " ")
        if !path.isEmpty, command.configuration._superCommandName == above,
            let parsed = try? command.parseAsRoot(Array(arguments.dropFirst(path.count))),
            ObjectIdentifier(type(of: parsed)) == ObjectIdentifier(command)  // not ArgumentParser's help command
        {
            return parsed
        }
        return try parseAsRoot(arguments)
    }

    /// The run of a command read from a plain command line without ArgumentParser (``PlainArguments``), for the
    /// commands developers run in a loop: `deployctl validate` and `deployctl local`. `command` is the one the
    /// normalizer found `path` to name. Nil sends the line to ArgumentParser.
    static func plainCommand(_ arguments: [String], path: [String], command: any ParsableCommand.Type) -> (() throws -> Void)? {
        let rest = arguments.dropFirst(path.count)
        switch ObjectIdentifier(command) {
        case ObjectIdentifier(LocalCommand.self): return LocalCommand.parsedPlainly(rest).map { command in { try command.run() } }
        case ObjectIdentifier(ValidateCommand.self): return ValidateCommand.parsedPlainly(rest).map { command in { try command.run() } }
        default: return nil
        }
    }

    /// Parses, runs, and maps every failure to one stderr line and the aws CLI v2 exit codes.
    public static func runMain() async {
        do {
            try Self.checkArgumentsAreUTF8()
            let given = Self.joiningNegativeNumbers(Array(CommandLine.arguments.dropFirst()))
            switch ArgumentNormalizer.normalize(given, root: Self.self) {
            case .arguments(let normalized, let path, let named):
                if let plain = plainCommand(normalized, path: path, command: named) {
                    try plain()
                } else {
                    var command = try parseFromSubcommand(normalized, path: path, command: named)
                    if var asynchronous = command as? any AsyncParsableCommand {
                        try await asynchronous.run()
                    } else {
                        try command.run()
                    }
                }
            case .unknownSubcommand(let name):
                throw CLIFailure.usage(
                    "deployctl: '\(name.prefix(100))' is not a deployctl command; `deployctl --help` lists them (the subcommands of aws deploy, and more)."
                )
            }
            // What print() buffered: a full disk behind a redirect must not pass for success.
            if fflush(nil) != 0 { throw CLIFailure.other("cannot write the output: \(String(cString: strerror(errno)))") }
        } catch let failure as CLIFailure {
            if !failure.message.isEmpty {
                // One line for scripts; on a terminal, broken at its width so no line wraps.
                let lines =
                    isatty(STDERR_FILENO) == 1 ? TerminalSize.wrap(failure.message, columns: TerminalSize.current().columns) : [failure.message]
                StandardStreams.err(lines.joined(separator: "\n") + "\n")
            }
            Glibc.exit(failure.exitCode)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Glibc.exit(0)
            }
            StandardStreams.err(message + "\n")
            if code == .validationFailure { Glibc.exit(252) }
            if error is DecodingError || error is EncodingError { Glibc.exit(255) }
            Glibc.exit(code == .failure ? 255 : code.rawValue)
        }
    }
}
