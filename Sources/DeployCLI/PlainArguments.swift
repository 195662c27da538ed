import ArgumentParser
import Bundles
import DeployModel

/// How a long option takes its value.
enum PlainOptionKind: Sendable {
    /// One value, given once.
    case value
    /// One value each time; may be repeated.
    case repeatable
    /// No value.
    case flag
}

/// The long options of a command, declared once: its ArgumentParser property wrappers take their names from here
/// (`name: LocalOption.events.name`) and ``PlainArguments`` reads the same cases, so the two cannot name different
/// options (`PlainArgumentsTests` compares them with ArgumentParser's own description of the command).
protocol PlainOptions: RawRepresentable<String>, CaseIterable, Sendable where AllCases == [Self] {
    var kind: PlainOptionKind { get }
}

extension PlainOptions {
    /// The name ArgumentParser declares: `--` and the raw value.
    var name: NameSpecification { .customLong(rawValue) }

    static var declared: [(name: String, kind: PlainOptionKind)] { allCases.map { ($0.rawValue, $0.kind) } }
}

/// A command line made only of `--name value`, `--name=value` and `--flag`, all of them known, read without
/// ArgumentParser.
///
/// ArgumentParser finds a command's options by reflecting over it (`Mirror`), casts every property wrapper to its own
/// protocols and decodes the result through `Decodable`; on Linux each first cast or generic instantiation makes the
/// Swift runtime scan every protocol conformance record of the binary (13,600 of them). For a trivial
/// `deployctl local` that was about 40 scans and two thirds of the instructions it ran, before any deployment work
/// (BENCHMARKS.md, "Start-up, third pass").
///
/// So the commands developers run in a loop may read such a command line themselves, and give up on anything else:
/// an unknown or repeated option, a value that looks like an option, `--help`, a positional argument. ArgumentParser then
/// parses the whole line as before, so help, errors and their wording come from one place only. `PlainArgumentsTests`
/// checks that every line read here gives the command ArgumentParser gives.
struct PlainArguments {
    /// The last value of each option given (`--name` without dashes).
    private(set) var values: [String: String] = [:]
    /// Every value of the options that may be repeated, in order.
    private(set) var lists: [String: [String]] = [:]
    /// The flags given.
    private(set) var flags: Set<String> = []

    /// Reads `arguments`, or nil when they are not all plain or name an option not `declared`.
    init?(_ arguments: ArraySlice<String>, declared: [(name: String, kind: PlainOptionKind)]) {
        var options = Set<String>()
        var repeatable = Set<String>()
        var flagNames = Set<String>()
        for (name, kind) in declared {
            switch kind {
            case .value: options.insert(name)
            case .repeatable: repeatable.insert(name)
            case .flag: flagNames.insert(name)
            }
        }
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.utf8.count > 2 else { return nil }
            var name = String(argument.dropFirst(2))
            var attached: String?
            if let equals = name.firstIndex(of: "=") {
                attached = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
                // `--name=` is a missing value to ArgumentParser (`--name ""` is an empty one).
                if attached?.isEmpty == true { return nil }
            }
            if flagNames.contains(name) {
                guard attached == nil, flags.insert(name).inserted else { return nil }
                continue
            }
            guard options.contains(name) || repeatable.contains(name) else { return nil }
            let value: String
            if let attached {
                value = attached
            } else {
                // ArgumentParser takes the next word as the value only when it cannot be an option.
                guard index < arguments.endIndex, !arguments[index].hasPrefix("-") else { return nil }
                value = arguments[index]
                index += 1
            }
            if repeatable.contains(name) {
                lists[name, default: []].append(value)
            } else if values.updateValue(value, forKey: name) != nil {
                return nil
            }
        }
    }

    /// The value of `option` converted as ArgumentParser converts it: `.some(nil)` when not given, nil when given
    /// but not a valid value (ArgumentParser then says why).
    func value<Option: PlainOptions, Value>(_ option: Option, _ convert: (String) -> Value?) -> Value?? {
        guard let text = values[option.rawValue] else { return .some(nil) }
        guard let converted = convert(text) else { return nil }
        return .some(converted)
    }

    /// The text of `option`, if given.
    subscript<Option: PlainOptions>(_ option: Option) -> String? { values[option.rawValue] }

    /// Every value of a repeatable `option`, in order.
    func list<Option: PlainOptions>(_ option: Option) -> [String] { lists[option.rawValue] ?? [] }

    /// Whether the flag `option` was given.
    func has<Option: PlainOptions>(_ option: Option) -> Bool { flags.contains(option.rawValue) }
}

extension LocalCommand {
    /// `deployctl local` from a plain command line (``PlainArguments``), validated; nil for anything else.
    static func parsedPlainly(_ arguments: ArraySlice<String>) -> LocalCommand? {
        guard let plain = PlainArguments(arguments, declared: LocalOption.declared + EngineOption.declared),
            let type = plain.value(LocalOption.type, LocalBundleType.init(argument:)),
            let fileExistsBehavior = plain.value(LocalOption.fileExistsBehavior, FileExistsBehavior.init(argument:)),
            let output = plain.value(LocalOption.output, ReportFormat.init(argument:)),
            let maxRevisions = plain.value(EngineOption.maxRevisions, Int.init(argument:)),
            let maxLogBytes = plain.value(EngineOption.maxLogBytes, Int64.init(argument:))
        else { return nil }
        var engine = EngineOptions()
        engine.maxRevisionsGiven = maxRevisions
        engine.hookEnv = plain.list(EngineOption.hookEnv)
        engine.maxLogBytesGiven = maxLogBytes
        var command = LocalCommand()
        command.bundleLocation = plain[LocalOption.bundleLocation] ?? defaultBundleLocation
        command.type = type
        command.fileExistsBehavior = fileExistsBehavior
        command.deploymentGroup = plain[LocalOption.deploymentGroup] ?? defaultDeploymentGroup
        command.deploymentGroupName = plain[LocalOption.deploymentGroupName] ?? defaultDeploymentGroupName
        command.applicationName = plain[LocalOption.applicationName]
        command.events = plain[LocalOption.events]
        command.appSpecFileName = plain[LocalOption.appSpecFileName]
        command.agentRoot = plain[LocalOption.agentRoot]
        command.installRoot = plain[LocalOption.installRoot]
        command.ignoreApplicationStopFailures = plain.has(LocalOption.ignoreApplicationStopFailures)
        command.deploymentId = plain[LocalOption.deploymentId]
        command.engineOptions = engine
        command.output = output ?? .text
        command.preflight = plain.has(LocalOption.preflight)
        do {
            try engine.validate()
            try command.validate()
        } catch {
            return nil
        }
        return command
    }
}

extension ValidateCommand {
    /// `deployctl validate` from a plain command line (``PlainArguments``), validated; nil for anything else.
    static func parsedPlainly(_ arguments: ArraySlice<String>) -> ValidateCommand? {
        guard let plain = PlainArguments(arguments, declared: ValidateOption.declared),
            let bundleType = plain.value(ValidateOption.bundleType, ArchiveFormat.init(argument:)),
            let output = plain.value(ValidateOption.output, ValidationOutput.init(argument:))
        else { return nil }
        var command = ValidateCommand()
        command.bundle = plain[ValidateOption.bundle]
        command.source = plain[ValidateOption.source]
        command.bundleType = bundleType
        command.appSpecFileName = plain[ValidateOption.appSpecFileName]
        command.ignoreHidden = plain.has(ValidateOption.ignoreHiddenFiles)
        command.output = output ?? .text
        command.strict = plain.has(ValidateOption.strict)
        do {
            try command.validate()
        } catch {
            return nil
        }
        return command
    }
}
