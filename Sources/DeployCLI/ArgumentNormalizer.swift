import ArgumentParser

/// What the aws CLI accepts that ArgumentParser does not, turned into what it does, before parsing:
/// global options before the subcommand (`deployctl --output text get-deployment …`), `help` as a word
/// (`deployctl get-deployment help`, `deployctl help get-deployment`), and a subcommand that does not exist, even with
/// `--help` (an error naming it, exit 252, not the top-level help and 0).
enum ArgumentNormalizer {
    /// Global options that take a value, and global flags. Arrays: a `Set` would be the process's first
    /// `Set<String>`, whose type metadata and conformances the runtime looks up at 0.2 ms.
    static let valueOptions: [String] = [
        "--output", "--query", "--region", "--endpoint-url", "--profile", "--ca-bundle", "--state", "--color",
    ]
    static let flags: [String] = ["--no-paginate", "--no-verify-ssl", "--debug", "--no-cli-pager"]

    enum Outcome {
        /// The arguments rearranged; their first `path.count` words name `command`, a subcommand of the root (or the
        /// root itself when `path` is empty).
        case arguments([String], path: [String], command: any ParsableCommand.Type)
        /// A word where a subcommand's name belongs that names none (with or without `--help`).
        case unknownSubcommand(String)
    }

    /// The subcommand names under `command`, by name.
    static func subcommands(of command: any ParsableCommand.Type) -> [String: any ParsableCommand.Type] {
        var names: [String: any ParsableCommand.Type] = [:]
        for sub in command.configuration.subcommands { names[sub._commandName] = sub }
        return names
    }

    static func normalize(_ arguments: [String], root: any ParsableCommand.Type) -> Outcome {
        // Leading global options move behind the subcommand path they precede.
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if valueOptions.contains(name) {
                leading.append(argument)
                if !argument.contains("="), index + 1 < arguments.count {
                    leading.append(arguments[index + 1])
                    index += 1
                }
                index += 1
            } else if flags.contains(argument) {
                leading.append(argument)
                index += 1
            } else {
                break
            }
        }
        var rest = Array(arguments[index...])
        // `--generate-cli-skeleton` alone means `input`, as in the aws CLI.
        if let at = rest.firstIndex(of: "--generate-cli-skeleton"),
            at + 1 == rest.count || rest[at + 1].hasPrefix("-")
        {
            rest.insert("input", at: at + 1)
        }
        // `help <subcommand …>` and `<subcommand …> help`.
        var wantsHelp = false
        if rest.first == "help", rest.count > 1 {
            rest.removeFirst()
            wantsHelp = true
        }
        // The subcommand path: the leading words that name subcommands.
        var path: [String] = []
        var command = root
        while let word = rest.first.flatMap({ $0.hasPrefix("-") ? nil : $0 }) {
            let known = subcommands(of: command)
            if word == "help", known[word] == nil {
                // `deployctl help`, `<subcommand …> help`: the word right after the command's name.
                rest.removeFirst()
                wantsHelp = true
                break
            }
            guard let next = known[word] else {
                // A command with subcommands takes no other words: this one names none of them.
                if known.isEmpty { break }
                return .unknownSubcommand((path + [word]).joined(separator: " "))
            }
            path.append(word)
            command = next
            rest.removeFirst()
        }
        if wantsHelp { rest.append("--help") }
        if leading.isEmpty || path.isEmpty { return .arguments(leading.isEmpty ? path + rest : leading + path + rest, path: path, command: command) }
        return .arguments(path + rest + leading, path: path, command: command)
    }
}
