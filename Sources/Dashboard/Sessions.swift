import Foundation
import Synchronization

/// Signed-in browsers: a session is a random id (the cookie) standing for the access key that signed in, with its
/// CSRF token. Kept in memory (a restarted server asks everyone to sign in again), at most ``limit`` at once (the
/// oldest goes), each for ``lifetime`` seconds.
public final class DashboardSessions: Sendable {
    public struct Session: Sendable {
        public var accessKeyId: String
        public var csrfToken: String
        public var expires: Date
    }

    public static let cookieName = "deployctl_session"
    public static let lifetime: TimeInterval = 8 * 3600
    static let limit = 10_000
    private let sessions = Mutex<[String: Session]>([:])

    public init() {}

    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    /// A new session for the key; answers its id.
    public func open(accessKeyId: String) -> String {
        let id = Self.random()
        let session = Session(accessKeyId: accessKeyId, csrfToken: Self.random(), expires: Date().addingTimeInterval(Self.lifetime))
        sessions.withLock { sessions in
            let now = Date()
            if sessions.count >= Self.limit {
                sessions = sessions.filter { $0.value.expires > now }
                if sessions.count >= Self.limit, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires })?.key {
                    sessions[oldest] = nil
                }
            }
            sessions[id] = session
        }
        return id
    }

    public func session(_ id: String) -> Session? {
        sessions.withLock { sessions in
            guard let found = sessions[id] else { return nil }
            if found.expires <= Date() {
                sessions[id] = nil
                return nil
            }
            return found
        }
    }

    public func close(_ id: String) { sessions.withLock { $0[id] = nil } }

    /// The session id in a `Cookie` header.
    public static func id(inCookieHeader header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0] == cookieName { return String(pair[1]) }
        }
        return nil
    }

    /// Compares without leaking where two strings first differ.
    public static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
