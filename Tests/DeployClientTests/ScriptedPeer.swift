import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback HTTP/1.1 peer that answers each connection as its script says, then closes it: how the client
/// behaves when the network drops a request, or the server refuses it, is tested against real sockets.
final class ScriptedPeer: Sendable {
    enum Reply: Sendable {
        /// Read the request, then close the connection without an answer.
        case close
        case answer(status: Int, body: String)
    }

    let port: UInt16
    private let listener: Int32
    private let received = RequestLog()

    /// The request heads received so far (request line and headers), in order.
    var requests: [String] { received.heads.withLock { $0 } }

    final class RequestLog: Sendable {
        let heads = Mutex<[String]>([])
    }

    init(_ replies: [Reply]) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 16) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        let received = self.received
        Thread.detachNewThread {
            for reply in replies {
                let connection = accept(fd, nil, nil)
                guard connection >= 0 else { return }
                received.heads.withLock { $0.append(Self.readRequest(connection)) }
                if case .answer(let status, let body) = reply {
                    let text =
                        "HTTP/1.1 \(status) Answer\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
                    _ = text.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                }
                close(connection)
            }
        }
    }

    /// Reads one request: its head, then as many body bytes as its Content-Length says.
    private static func readRequest(_ connection: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var head: String?
        var bodyWanted = 0
        while true {
            if head == nil, let end = bytes.indices.dropLast(3).first(where: { bytes[$0...$0 + 3].elementsEqual("\r\n\r\n".utf8) }) {
                let text = String(decoding: bytes[..<end], as: UTF8.self)
                head = text
                let lengthLine = text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                bodyWanted = end + 4 + (lengthLine.flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0)
            }
            if let head, bytes.count >= bodyWanted { return head }
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return head ?? "" }
            bytes += buffer[0..<count]
        }
    }

    deinit {
        // Wakes the thread blocked in accept (on Linux, close alone does not).
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}
