import Foundation
import Testing

@testable import TrafficControl

#if canImport(Glibc)
    import Glibc
#endif

/// HAProxy's runtime API driven against a real HAProxy (Debian's 2.6, started here on loopback with its stats socket
/// in a temporary directory) in front of two real HTTP servers: one HAProxy for the suite, stopped by its PID.
@Suite(.serialized) struct HAProxyRuntimeTests {
    /// A free loopback port (bound, read, released).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw POSIXError(.EADDRINUSE) }
        return UInt16(bigEndian: address.sin_port)
    }

    /// A process started by the test (posix_spawn, output discarded), ended by its PID and reaped.
    final class Child {
        private(set) var pid: pid_t = 0

        init(_ executable: String, _ arguments: [String]) throws {
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            // The test's threads may block signals: the child starts with none blocked and SIGTERM at its default,
            // so stop() ends it.
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var none = sigset_t()
            sigemptyset(&none)
            posix_spawnattr_setsigmask(&attributes, &none)
            var defaults = sigset_t()
            sigemptyset(&defaults)
            sigaddset(&defaults, SIGTERM)
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
            let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            let status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
            guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EINVAL) }
        }

        func stop() {
            guard pid > 0 else { return }
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            pid = 0
        }

        deinit { stop() }
    }

    /// An HTTP server answering `/health` and `/who` (its name) from a directory.
    static func web(_ name: String, port: UInt16, root: String) throws -> Child {
        let directory = root + "/" + name
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "ok".write(toFile: directory + "/health", atomically: true, encoding: .utf8)
        try name.write(toFile: directory + "/who", atomically: true, encoding: .utf8)
        return try Child("/usr/bin/python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", directory])
    }

    /// Waits until `condition` holds, at most `seconds`.
    static func eventually(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    /// Who answers `GET /who` through HAProxy.
    static func who(_ port: UInt16) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = "GET /who HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        guard request.withCString({ send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }) > 0 else { return nil }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        let text = String(decoding: answer, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.0 200") || text.hasPrefix("HTTP/1.1 200"), let body = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[body.upperBound...])
    }

    @Test func drainAllowAndTheirFailuresOnARealHAProxy() throws {
        let haproxy = "/usr/sbin/haproxy"
        guard FileManager.default.isExecutableFile(atPath: haproxy) else {
            Issue.record("haproxy is not installed (apt-get install haproxy; .ci/run does)")
            return
        }
        let root = NSTemporaryDirectory() + "haproxy-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (front, port1, port2) = (try Self.freePort(), try Self.freePort(), try Self.freePort())
        var web1 = try Self.web("web-1", port: port1, root: root)
        let web2 = try Self.web("web-2", port: port2, root: root)
        defer { web2.stop() }
        let socketPath = root + "/admin.sock"
        let config = """
            global
                stats socket \(socketPath) mode 600 level admin
                stats timeout 10s
            defaults
                mode http
                timeout connect 1s
                timeout client 10s
                timeout server 10s
            frontend fe
                bind 127.0.0.1:\(front)
                default_backend web
            backend web
                balance roundrobin
                option httpchk GET /health
                default-server inter 100ms rise 2 fall 2
                server web-1 127.0.0.1:\(port1) check
                server web-2 127.0.0.1:\(port2) check

            """
        try config.write(toFile: root + "/haproxy.cfg", atomically: true, encoding: .utf8)
        let balancer = try Child(haproxy, ["-db", "-f", root + "/haproxy.cfg"])
        defer { balancer.stop() }
        #expect(Self.eventually(5) { FileManager.default.fileExists(atPath: socketPath) })

        var commands: [String] = []
        let sent = Commands()
        var runtime = HAProxyRuntime(address: try RuntimeAddress(parsing: "unix:" + socketPath))
        runtime.onCommand = { sent.append($0) }

        // Both servers come up once their checks pass.
        #expect(try Self.eventually(5) { try runtime.servers(backend: "web").allSatisfy(\.checksPass) })
        #expect(try runtime.servers(backend: "web").map(\.server) == ["web-1", "web-2"])

        // Draining web-1: no session is open, so it returns at once; new requests go to web-2 only.
        let started = Date()
        let drained = try runtime.drain(backend: "web", server: "web-1", timeout: 5)
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(drained.status.hasPrefix("DRAIN"), "\(drained.summary)")
        #expect(drained.sessions == 0)
        #expect((0..<6).compactMap { _ in Self.who(front) } == Array(repeating: "web-2", count: 6))

        // In maintenance with its service stopped, allow waits for checks that never pass, and leaves it drained.
        try runtime.setState(backend: "web", server: "web-1", "maint")
        web1.stop()
        #expect(
            performing: { try runtime.allow(backend: "web", server: "web-1", timeout: 1) },
            throws: { error in
                guard case .timedOut(_, "web", "web-1", _, let last) = error as? TrafficControlError else { return false }
                return last.contains("DRAIN") || last.contains("DOWN")
            })
        #expect(try !runtime.status(backend: "web", server: "web-1").isUp)
        #expect((0..<4).compactMap { _ in Self.who(front) } == Array(repeating: "web-2", count: 4))

        // Its service back, allow waits for the checks, then puts it back: requests reach both again.
        web1 = try Self.web("web-1", port: port1, root: root)
        defer { web1.stop() }
        let allowed = try runtime.allow(backend: "web", server: "web-1", timeout: 10)
        #expect(allowed.isUp, "\(allowed.summary)")
        #expect(allowed.checksPass)
        #expect(Set((0..<6).compactMap { _ in Self.who(front) }) == ["web-1", "web-2"])

        // What was sent, in order: every command a deployment would show in its diagnostics.
        commands = sent.all
        #expect(commands.contains("set server web/web-1 state drain"))
        #expect(commands.contains("set server web/web-1 state maint"))
        #expect(commands.last(where: { $0.hasPrefix("set server") }) == "set server web/web-1 state ready")

        // A server or backend that is not there is named as such, and nothing changes.
        #expect(throws: TrafficControlError.noSuchServer(runtime.address, backend: "web", server: "web-9")) {
            try runtime.setState(backend: "web", server: "web-9", "drain")
        }
        #expect(throws: TrafficControlError.noSuchServer(runtime.address, backend: "web", server: "web-9")) {
            try runtime.status(backend: "web", server: "web-9")
        }
        #expect(throws: TrafficControlError.self) { try runtime.servers(backend: "nope") }
        #expect(try runtime.servers(backend: "web").allSatisfy(\.isUp))
    }

    @Test func anUnreachableOrMalformedAddressIsAClearError() throws {
        let missing = HAProxyRuntime(address: .unix(path: "/nonexistent/haproxy.sock"))
        let error = #expect(throws: TrafficControlError.self) { try missing.servers(backend: "web") }
        #expect(error?.description.contains("cannot reach HAProxy's runtime API at unix:/nonexistent/haproxy.sock") == true)
        let closedPort = HAProxyRuntime(address: .tcp(host: "127.0.0.1", port: try Self.freePort()))
        #expect(throws: TrafficControlError.self) { try closedPort.send("show info") }
        #expect(try RuntimeAddress(parsing: "tcp:127.0.0.1:9999") == .tcp(host: "127.0.0.1", port: 9999))
        #expect(try RuntimeAddress(parsing: "unix:/run/haproxy/admin.sock") == .unix(path: "/run/haproxy/admin.sock"))
        for bad in ["", "unix:", "tcp:host", "tcp::80", "tcp:host:0", "tcp:host:99999", "/run/haproxy.sock", "http://x"] {
            #expect(throws: TrafficControlError.badAddress(bad), "\(bad)") { try RuntimeAddress(parsing: bad) }
        }
    }

    /// A name that could end a command or add one (an instance name is whatever was registered) is refused before
    /// anything is sent: the whole class, `;`, white space, line breaks, `#`, empty and overlong names.
    @Test func namesThatCouldAddACommandAreNeverSent() throws {
        let sent = Commands()
        var runtime = HAProxyRuntime(address: .unix(path: "/nonexistent/haproxy.sock"))
        runtime.onCommand = { sent.append($0) }
        for name in [
            "web-1;shutdown sessions server web/web-2", "web 1", "web-1\nset server web/web-2 state maint", "web\t1", "#1", "", "a/b",
            String(repeating: "a", count: 101), "wéb",
        ] {
            #expect(throws: TrafficControlError.invalidName(name)) { try runtime.setState(backend: "web", server: name, "drain") }
            #expect(throws: TrafficControlError.invalidName(name)) { try runtime.setState(backend: name, server: "web-1", "drain") }
            #expect(throws: TrafficControlError.invalidName(name)) { try runtime.servers(backend: name) }
            #expect(throws: TrafficControlError.invalidName(name)) { try runtime.status(backend: "web", server: name) }
        }
        #expect(throws: TrafficControlError.invalidName("ready; disable server web/web-2")) {
            try runtime.setState(backend: "web", server: "web-1", "ready; disable server web/web-2")
        }
        #expect(sent.all.isEmpty)
        #expect(throws: TrafficControlError.self) { try runtime.setState(backend: "web", server: "web-1.example:8080", "drain") }
        #expect(sent.all == ["set server web/web-1.example:8080 state drain"], "a valid name reaches the (missing) socket")
    }

    @Test func aServerStatusReadsChecksAsHAProxyCountsThem() {
        var status = ServerStatus(
            backend: "web", server: "web-1", status: "UP", sessions: 0, queued: 0, checkStatus: "L7OK", checkHealth: 3, checkRise: 2,
            checkFall: 2, weight: 1)
        #expect(status.checksPass)
        // Just out of maintenance, HAProxy says UP with health = rise before any check: not yet proven.
        status.checkHealth = 2
        #expect(!status.checksPass)
        status.checkHealth = 3
        status.checkStatus = "L4CON"
        #expect(!status.checksPass)
        #expect(status.summary == "web/web-1 UP, 0 session(s), check L4CON 3/3")
    }
}

/// The commands a runtime sent, from its `onCommand`.
final class Commands: @unchecked Sendable {
    private let lock = NSLock()
    private var sent: [String] = []
    func append(_ command: String) { lock.withLock { sent.append(command) } }
    var all: [String] { lock.withLock { sent } }
}

/// The weights a shift step sets: green's share of the requests, within HAProxy's 0 to 256 per server.
@Suite struct ShiftWeightTests {
    @Test func weightsGiveGreenItsShare() {
        #expect(TrafficDriver.weights(share: 10, green: 3, blue: 3) == ("1", "9"))
        #expect(TrafficDriver.weights(share: 50, green: 2, blue: 4) == ("2", "1"))
        #expect(TrafficDriver.weights(share: 100, green: 3, blue: 3) == ("100%", "0"))
        #expect(TrafficDriver.weights(share: 10, green: 3, blue: 0) == ("100%", "0"))
        // Large fleets: scaled into 1...256 and still close to the share.
        let (g, b) = TrafficDriver.weights(share: 1, green: 1, blue: 300)
        let green = Double(g) ?? 0
        let blue = Double(b) ?? 0
        #expect(green >= 1 && blue <= 256)
        #expect(abs(green / (green + 300 * blue) - 0.01) < 0.005)
    }
}
