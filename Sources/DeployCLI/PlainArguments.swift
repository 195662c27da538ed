import Bundles
import DeployModel

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

    /// Reads `arguments`, or nil when they are not all plain: `options` take one value and may be given once,
    /// `repeatable` take one value each time, `flagNames` take none.
    init?(_ arguments: ArraySlice<String>, options: Set<String>, repeatable: Set<String> = [], flagNames: Set<String> = []) {
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

    /// The value of `name` converted as ArgumentParser converts it: `.some(nil)` when not given, nil when given but
    /// not a valid value (ArgumentParser then says why).
    func value<Value>(_ name: String, _ convert: (String) -> Value?) -> Value?? {
        guard let text = values[name] else { return .some(nil) }
        guard let converted = convert(text) else { return nil }
        return .some(converted)
    }
}

extension LocalCommand {
    /// `deployctl local` from a plain command line (``PlainArguments``), validated; nil for anything else.
    static func parsedPlainly(_ arguments: ArraySlice<String>) -> LocalCommand? {
        guard
            let plain = PlainArguments(
                arguments,
                options: [
                    "bundle-location", "type", "file-exists-behavior", "deployment-group", "deployment-group-name", "application-name",
                    "events", "appspec-filename", "agent-root", "install-root", "deployment-id", "max-revisions", "max-log-bytes", "output",
                ],
                repeatable: ["hook-env"], flagNames: ["ignore-application-stop-failures", "preflight"]),
            let type = plain.value("type", LocalBundleType.init(argument:)),
            let fileExistsBehavior = plain.value("file-exists-behavior", FileExistsBehavior.init(argument:)),
            let output = plain.value("output", ReportFormat.init(argument:)),
            let maxRevisions = plain.value("max-revisions", Int.init(argument:)),
            let maxLogBytes = plain.value("max-log-bytes", Int64.init(argument:))
        else { return nil }
        var engine = EngineOptions()
        engine.maxRevisionsGiven = maxRevisions
        engine.hookEnv = plain.lists["hook-env"] ?? []
        engine.maxLogBytesGiven = maxLogBytes
        var command = LocalCommand()
        command.bundleLocation = plain.values["bundle-location"] ?? defaultBundleLocation
        command.type = type
        command.fileExistsBehavior = fileExistsBehavior
        command.deploymentGroup = plain.values["deployment-group"] ?? defaultDeploymentGroup
        command.deploymentGroupName = plain.values["deployment-group-name"] ?? defaultDeploymentGroupName
        command.applicationName = plain.values["application-name"]
        command.events = plain.values["events"]
        command.appSpecFileName = plain.values["appspec-filename"]
        command.agentRoot = plain.values["agent-root"]
        command.installRoot = plain.values["install-root"]
        command.ignoreApplicationStopFailures = plain.flags.contains("ignore-application-stop-failures")
        command.deploymentId = plain.values["deployment-id"]
        command.engineOptions = engine
        command.output = output ?? .text
        command.preflight = plain.flags.contains("preflight")
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
        guard
            let plain = PlainArguments(
                arguments, options: ["bundle", "source", "bundle-type", "appspec-filename", "output"],
                flagNames: ["ignore-hidden-files", "strict"]),
            let bundleType = plain.value("bundle-type", ArchiveFormat.init(argument:)),
            let output = plain.value("output", ValidationOutput.init(argument:))
        else { return nil }
        var command = ValidateCommand()
        command.bundle = plain.values["bundle"]
        command.source = plain.values["source"]
        command.bundleType = bundleType
        command.appSpecFileName = plain.values["appspec-filename"]
        command.ignoreHidden = plain.flags.contains("ignore-hidden-files")
        command.output = output ?? .text
        command.strict = plain.flags.contains("strict")
        do {
            try command.validate()
        } catch {
            return nil
        }
        return command
    }
}
