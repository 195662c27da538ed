import Foundation

/// A `postgres://USER@HOST:PORT/DB?sslmode=…` URL as the operator gave it (`--database`, `DEPLOYCTL_DATABASE_URL`).
/// libpq reads it as is, and takes the password from `PGPASSWORD` or `~/.pgpass` as every libpq program does; the
/// URL deployctl prints is ``redacted``.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public let text: String

    /// Whether `text` names a PostgreSQL database (rather than a state file's path).
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Checks the URL's form. `allowPassword` is false for a URL given on the command line, where every user of the
    /// host can read it (`ps`): the password belongs in `PGPASSWORD` or `~/.pgpass`.
    public init(_ text: String, allowPassword: Bool) throws(DatabaseURLError) {
        guard Self.isPostgres(text) else {
            throw DatabaseURLError("'\(text.prefix(60))' is not a PostgreSQL URL: expected postgres://USER@HOST:PORT/DATABASE")
        }
        guard let components = URLComponents(string: text) else {
            throw DatabaseURLError("'\(Self.redact(text))' is not a valid URL: expected postgres://USER@HOST:PORT/DATABASE")
        }
        if components.password != nil, !allowPassword {
            throw DatabaseURLError(
                "'\(Self.redact(text))' has a password, and a command line is visible to every user of this host: put it in PGPASSWORD or ~/.pgpass (or the URL in DEPLOYCTL_DATABASE_URL)"
            )
        }
        if components.path.count <= 1 {
            throw DatabaseURLError("'\(Self.redact(text))' names no database: expected postgres://USER@HOST:PORT/DATABASE")
        }
        self.text = text
    }

    /// The URL without its password.
    public var redacted: String { Self.redact(text) }
    public var description: String { redacted }

    /// What libpq is given: the URL, with a connect timeout and an application name unless it sets them.
    var conninfo: String {
        var extra: [String] = []
        if !text.contains("connect_timeout=") { extra.append("connect_timeout=5") }
        if !text.contains("application_name=") { extra.append("application_name=deployctl") }
        if extra.isEmpty { return text }
        return text + (text.contains("?") ? "&" : "?") + extra.joined(separator: "&")
    }

    /// `text` without its password (for any message that names a URL).
    public static func redact(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "postgres://***"
    }
}

public struct DatabaseURLError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
