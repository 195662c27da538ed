import ControlPlane
import DeployClient
import DeployModel
import DeployStoreSQLite
import Foundation

/// How a command ended, if not with success: the one place that picks exit codes (as aws CLI v2 does).
public enum CLIFailure: Error, Equatable {
    /// Bad usage or a request that fails validation before it reaches the service: exit 252.
    case usage(String)
    /// The operation refused the request: exit 254, with the AWS exception name.
    case service(operation: String, code: String, message: String)
    /// Anything else (the state file cannot be opened, I/O): exit 255.
    case other(String)
    /// `validate` (or `push`) found errors in a revision and has printed them: exit 1.
    case problemsFound
    /// `validate` could not read the revision at all (and has said why): exit 2.
    case unreadable

    public var exitCode: Int32 {
        switch self {
        case .usage: return 252
        case .service: return 254
        case .other: return 255
        case .problemsFound: return 1
        case .unreadable: return 2
        }
    }

    /// The one line printed on stderr: control characters escaped, and at most `maxMessageCharacters` (an error
    /// never echoes a 100 KB value back).
    public var message: String {
        let text: String
        switch self {
        case .usage(let m): text = m
        case .service(let op, let code, let message):
            text = "An error occurred (\(code)) when calling the \(op) operation: \(message)"
        case .other(let m): text = m
        case .problemsFound, .unreadable: text = ""
        }
        let cut =
            text.count > Self.maxMessageCharacters
            ? String(text.prefix(Self.maxMessageCharacters)) + "… (\(text.count - Self.maxMessageCharacters) more characters cut)" : text
        return TerminalText.safe(cut)
    }

    public static let maxMessageCharacters = 2000
}

extension CLIFailure {
    /// The one mapping from what a library throws while the CLI calls `operation` to how the CLI ends: the
    /// service's refusal is exit 254 with its AWS exception name (its message worded by `message`, which turns
    /// member names into flags), a state file or a server that cannot be used is exit 255, and anything else is
    /// passed on unchanged for ``DeployctlCommand/runMain()``.
    static func mapping(_ error: any Error, calling operation: String, message: (String) -> String = { $0 }) -> any Error {
        switch error {
        case let failure as CLIFailure: return failure
        case let error as ServiceError: return CLIFailure.service(operation: operation, code: error.code, message: message(error.message))
        case let error as RegistrationFailure: return mapping(error.error, calling: error.operation, message: message)
        case let error as StateFileError: return CLIFailure.other(error.description)
        case let error as RemoteError: return CLIFailure.other(error.description)
        default: return error
        }
    }

    /// Runs `body`, one call of `operation`, with its failures mapped by ``mapping(_:calling:message:)``.
    static func calling<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw mapping(error, calling: operation)
        }
    }

    /// ``calling(_:_:)`` for a call that does not suspend.
    static func calling<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw mapping(error, calling: operation)
        }
    }
}
