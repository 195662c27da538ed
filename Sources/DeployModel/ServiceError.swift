/// An error the service answers with: the AWS exception name of the model (`ApplicationDoesNotExistException`)
/// and a message for a person. The CLI prints it as
/// `An error occurred (code) when calling the Operation operation: message` and exits 254.
public struct ServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// The response of an operation whose model has no output members: nothing is printed.
public struct EmptyOutput: Codable, Sendable, Equatable {
    public init() {}
}

/// A failure the client may retry: the service could not complete the request now (its database is restarting or
/// unreachable), and nothing the request asked for was done. The server answers 503 `ServiceUnavailable`, which the
/// aws CLI, the SDKs and both agents retry with back-off.
public struct ServiceUnavailable: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { "ServiceUnavailable: \(message)" }
}
