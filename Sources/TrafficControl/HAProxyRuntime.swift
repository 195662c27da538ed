import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where HAProxy's runtime API listens: its `stats socket` (a Unix socket, `level admin`), or a TCP address.
public enum RuntimeAddress: Sendable, Equatable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: UInt16)

    /// `unix:/run/haproxy/admin.sock` or `tcp:127.0.0.1:9999`, as `--load-balancer NAME=ADDRESS` takes it.
    public init(parsing text: String) throws(TrafficControlError) {
        if text.hasPrefix("unix:"), text.count > 5 {
            self = .unix(path: String(text.dropFirst(5)))
        } else if text.hasPrefix("tcp:"), let colon = text.lastIndex(of: ":"), colon > text.index(text.startIndex, offsetBy: 3),
            let port = UInt16(text[text.index(after: colon)...]), port > 0
        {
            let host = String(text[text.index(text.startIndex, offsetBy: 4)..<colon])
            guard !host.isEmpty else { throw .badAddress(text) }
            self = .tcp(host: host, port: port)
        } else {
            throw .badAddress(text)
        }
    }

    public var description: String {
        switch self {
        case .unix(let path): return "unix:\(path)"
        case .tcp(let host, let port): return "tcp:\(host):\(port)"
        }
    }
}

/// Why a balancer could not be driven: each names the balancer's address and what to fix.
public enum TrafficControlError: Error, Sendable, Equatable, CustomStringConvertible {
    case badAddress(String)
    case unreachable(RuntimeAddress, String)
    case refused(RuntimeAddress, command: String, answer: String)
    case noSuchServer(RuntimeAddress, backend: String, server: String)
    case timedOut(RuntimeAddress, backend: String, server: String, waitingFor: String, last: String)
    /// A backend or server name HAProxy's runtime API cannot carry safely (`;`, spaces, line breaks would end or
    /// add commands): nothing was sent.
    case invalidName(String)
    case noSuchBackend(RuntimeAddress, backend: String)
    /// A `--load-balancer` value that is not NAME=ADDRESS.
    case badBalancer(String)
    /// A deployment names a balancer this process was not told the address of.
    case notConfigured(String, configured: [String])
    /// Backend servers a deployment's instances need and the balancer lacks.
    case missingServers(RuntimeAddress, backend: String, servers: [String])

    public var description: String {
        switch self {
        case .noSuchBackend(let address, let backend):
            return "HAProxy at \(address) has no backend '\(backend)': the deployment group's load balancer name must be an HAProxy backend"
        case .badBalancer(let text):
            return
                "--load-balancer '\(text.prefix(200))': expected NAME=unix:/PATH or NAME=tcp:HOST:PORT, NAME the load balancer name of the deployment group (an HAProxy backend)"
        case .notConfigured(let name, let configured):
            return
                "no balancer named '\(name)' is configured here (\(configured.isEmpty ? "none is" : "configured: " + configured.joined(separator: ", "))): start it with --load-balancer \(name)=unix:/run/haproxy/admin.sock (HAProxy's stats socket, level admin)"
        case .missingServers(let address, let backend, let servers):
            return
                "HAProxy at \(address) has no server \(servers.map { "'\($0)'" }.joined(separator: ", ")) in backend '\(backend)': name each instance's server after the instance (or tag the instance haproxy-server=NAME)"

        case .badAddress(let text):
            return "'\(text.prefix(200))' is not a runtime API address: expected unix:/PATH (HAProxy's stats socket) or tcp:HOST:PORT"
        case .unreachable(let address, let reason):
            return
                "cannot reach HAProxy's runtime API at \(address): \(reason). Is HAProxy running with `stats socket ... level admin` there?"
        case .refused(let address, let command, let answer):
            return
                "HAProxy at \(address) refused '\(command)': \(answer.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300)) (the stats socket needs `level admin`)"
        case .noSuchServer(let address, let backend, let server):
            return "HAProxy at \(address) has no server '\(server)' in backend '\(backend)'"
        case .timedOut(let address, let backend, let server, let waitingFor, let last):
            return "\(backend)/\(server) at \(address) did not \(waitingFor) in time; last seen: \(last)"
        case .invalidName(let name):
            return
                "'\(name.prefix(100))' cannot name an HAProxy backend or server: use letters, digits, '.', '_', '-' and ':' (at most 100)"
        }
    }
}

/// What HAProxy says of one server of a backend (`show stat`, the server rows).
public struct ServerStatus: Sendable, Equatable {
    public var backend: String
    public var server: String
    /// `UP`, `DOWN`, `DRAIN`, `MAINT`, `NOLB`, `no check`, with a check count when in transition (`UP 1/2`).
    public var status: String
    /// Current sessions, and requests queued for it.
    public var sessions: Int
    public var queued: Int
    /// The last health check's status (`L7OK`, `L4CON`, … empty without checks) and its health counter
    /// (0 … rise+fall-1) with the configured `rise` and `fall`.
    public var checkStatus: String
    public var checkHealth: Int
    public var checkRise: Int
    public var checkFall: Int
    public var weight: Int

    /// Serving load-balanced traffic.
    public var isUp: Bool { status.hasPrefix("UP") || status == "no check" }
    /// Its health checks pass and have passed `fall` times in a row since the last change: a server that leaves
    /// maintenance is marked UP before any check runs, so this, not `isUp`, tells that it really answers.
    public var checksPass: Bool {
        // No `check` on the server line: HAProxy has no health signal, and the server counts as healthy.
        if checkStatus.isEmpty { return status == "no check" || checkRise == 0 }
        return (checkStatus.hasPrefix("L7OK") || checkStatus.hasPrefix("L4OK") || checkStatus.hasPrefix("L6OK"))
            && checkHealth >= checkRise + checkFall - 1
    }

    /// One line for diagnostics: `web/web-1 DRAIN, 2 sessions, check L7OK 3/3`.
    public var summary: String {
        "\(backend)/\(server) \(status), \(sessions) session(s)\(queued > 0 ? ", \(queued) queued" : ""), check \(checkStatus.isEmpty ? "none" : checkStatus) \(checkHealth)/\(checkRise + checkFall - 1)"
    }
}

/// HAProxy 2.6's runtime API (the stats socket), spoken one command per connection as HAProxy expects in its
/// non-interactive mode. Every call blocks (a few milliseconds on a local socket): callers run it on a thread that
/// may block. Each command sent is reported to `onCommand`, so a deployment can show what it did to the balancer.
public struct HAProxyRuntime: Sendable {
    public let address: RuntimeAddress
    /// How long one command may take (connect, send, answer).
    public var timeout: TimeInterval = 5
    public var onCommand: @Sendable (String) -> Void = { _ in }

    public init(address: RuntimeAddress) {
        self.address = address
    }

    /// Sends one command and answers HAProxy's reply.
    public func send(_ command: String) throws(TrafficControlError) -> String {
        onCommand(command)
        let fd = try connect()
        defer { close(fd) }
        var seconds = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        let line = Array((command + "\n").utf8)
        var sent = 0
        while sent < line.count {
            let n = line[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw .unreachable(address, "sending '\(command)': \(String(cString: strerror(errno)))") }
            sent += n
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            if n < 0 { throw .unreachable(address, "reading the answer to '\(command)': \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            answer += buffer[0..<n]
            // An answer of the whole stats table is bounded by the balancer's size; cut a runaway one.
            if answer.count > 16 << 20 { break }
        }
        return String(decoding: answer, as: UTF8.self)
    }

    private func connect() throws(TrafficControlError) -> Int32 {
        switch address {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .unreachable(address, String(cString: strerror(errno))) }
            var socketAddress = sockaddr_un()
            socketAddress.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: socketAddress.sun_path) else {
                close(fd)
                throw .unreachable(address, "the socket path is longer than \(MemoryLayout.size(ofValue: socketAddress.sun_path) - 1) bytes")
            }
            withUnsafeMutableBytes(of: &socketAddress.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            let connected = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw .unreachable(address, reason)
            }
            return fd
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var found: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &found) == 0, let first = found else {
                throw .unreachable(address, "cannot resolve \(host)")
            }
            defer { freeaddrinfo(found) }
            let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .unreachable(address, String(cString: strerror(errno))) }
            // Bounded by `timeout`: a balancer address that drops packets must not hold a step for the kernel's
            // minutes-long connect timeout.
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            if Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
                guard errno == EINPROGRESS else {
                    let reason = String(cString: strerror(errno))
                    close(fd)
                    throw .unreachable(address, reason)
                }
                var wanted = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&wanted, 1, Int32(timeout * 1000))
                var failure: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length)
                guard ready == 1, failure == 0 else {
                    let reason = ready == 0 ? "no answer within \(Int(timeout)) s" : String(cString: strerror(failure == 0 ? errno : failure))
                    close(fd)
                    throw .unreachable(address, reason)
                }
            }
            _ = fcntl(fd, F_SETFL, flags)
            return fd
        }
    }

    /// Checks a backend or server name before it goes into a command: HAProxy's own name characters only, so a name
    /// (an instance name comes from whoever registered it) can never end the command or add another.
    static func checkName(_ name: String) throws(TrafficControlError) {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F
                || byte == 0x2D || byte == 0x3A
        }
        guard allowed, !name.isEmpty, name.utf8.count <= 100 else { throw .invalidName(name) }
    }

    /// Runs a command that changes state: HAProxy answers nothing (or an empty line) on success, and says why not.
    func change(_ command: String, backend: String, server: String) throws(TrafficControlError) {
        let answer = try send(command)
        let text = answer.trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.isEmpty else {
            if text.hasPrefix("No such server") || text.hasPrefix("No such backend") || text.contains("No such server") {
                throw .noSuchServer(address, backend: backend, server: server)
            }
            throw .refused(address, command: command, answer: text)
        }
    }

    /// Every server of `backend`, from `show stat` (its CSV, columns as HAProxy 2.6 numbers them). All proxies'
    /// backend and server rows are asked for and filtered here: `show stat NAME` picks the first proxy of that name,
    /// which is the frontend when a frontend and a backend share it (a common configuration).
    public func servers(backend: String) throws(TrafficControlError) -> [ServerStatus] {
        try Self.checkName(backend)
        let command = "show stat -1 6 -1"
        let answer = try send(command)
        var rows: [ServerStatus] = []
        var sawHeader = false
        var sawBackend = false
        for line in answer.split(separator: "\n") {
            if line.hasPrefix("# ") {
                sawHeader = true
                continue
            }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count > 69, fields[0] == backend, fields[1] != "FRONTEND" else { continue }
            if fields[1] == "BACKEND" {
                sawBackend = true
                continue
            }
            func int(_ index: Int) -> Int { Int(fields[index]) ?? 0 }
            rows.append(
                ServerStatus(
                    backend: fields[0], server: fields[1], status: fields[17], sessions: int(4), queued: int(2), checkStatus: fields[36],
                    checkHealth: int(69), checkRise: int(67), checkFall: int(68), weight: int(18)))
        }
        guard sawHeader else { throw .refused(address, command: command, answer: answer) }
        guard sawBackend else { throw .noSuchBackend(address, backend: backend) }
        return rows
    }

    /// One server's status; `noSuchServer` when the backend has no server of that name.
    public func status(backend: String, server: String) throws(TrafficControlError) -> ServerStatus {
        try Self.checkName(server)
        guard let found = try servers(backend: backend).first(where: { $0.server == server }) else {
            throw .noSuchServer(address, backend: backend, server: server)
        }
        return found
    }

    /// `set server <backend>/<server> state ready|drain|maint`.
    public func setState(backend: String, server: String, _ state: String) throws(TrafficControlError) {
        try Self.checkName(backend)
        try Self.checkName(server)
        guard ["ready", "drain", "maint"].contains(state) else { throw .invalidName(state) }
        try change("set server \(backend)/\(server) state \(state)", backend: backend, server: server)
    }

    /// `set weight <backend>/<server> <weight>`: 0 to 256, or a percentage of its configured weight (`100%` restores it).
    public func setWeight(backend: String, server: String, _ weight: String) throws(TrafficControlError) {
        try Self.checkName(backend)
        try Self.checkName(server)
        let valid: Bool
        if weight.hasSuffix("%"), let percent = Int(weight.dropLast()) {
            valid = (0...100).contains(percent)
        } else {
            valid = Int(weight).map { (0...256).contains($0) } ?? false
        }
        guard valid else { throw .invalidName(weight) }
        try change("set weight \(backend)/\(server) \(weight)", backend: backend, server: server)
    }

    /// Takes the server out of load balancing (new requests go elsewhere; health checks go on) and waits until it
    /// has no session and nothing queued, at most `timeout` (AWS's deregistration delay); answers the status it
    /// ended with. Sessions still open at the timeout are left to end by themselves.
    @discardableResult
    public func drain(backend: String, server: String, timeout: TimeInterval, poll: TimeInterval = 0.1) throws(TrafficControlError)
        -> ServerStatus
    {
        try setState(backend: backend, server: server, "drain")
        return try waitUntilIdle(backend: backend, server: server, timeout: timeout, poll: poll)
    }

    /// Waits until the server has no session and nothing queued, at most `timeout`; answers the status it ended with.
    @discardableResult
    public func waitUntilIdle(backend: String, server: String, timeout: TimeInterval, poll: TimeInterval = 0.1) throws(TrafficControlError)
        -> ServerStatus
    {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let now = try status(backend: backend, server: server)
            if now.sessions == 0, now.queued == 0 { return now }
            if Date() >= deadline { return now }
            usleep(UInt32(poll * 1_000_000))
        }
    }

    /// Puts the server back into load balancing only once its health checks pass: from maintenance it goes to drain
    /// first (checked, no traffic), waits for the checks (HAProxy would mark it UP at once on `ready`, before any
    /// check), then `ready`. Fails with the last check status after `timeout`, leaving it drained.
    @discardableResult
    public func allow(backend: String, server: String, timeout: TimeInterval, poll: TimeInterval = 0.1) throws(TrafficControlError)
        -> ServerStatus
    {
        let before = try status(backend: backend, server: server)
        if before.status.hasPrefix("MAINT") { try setState(backend: backend, server: server, "drain") }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let now = try status(backend: backend, server: server)
            if now.checksPass { break }
            if Date() >= deadline {
                throw .timedOut(address, backend: backend, server: server, waitingFor: "pass its health checks", last: now.summary)
            }
            usleep(UInt32(poll * 1_000_000))
        }
        try setState(backend: backend, server: server, "ready")
        return try status(backend: backend, server: server)
    }
}
