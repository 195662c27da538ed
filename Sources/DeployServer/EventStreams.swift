import AWSWire
import DeployModel
import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// The open `GET /events` streams: how many (at most ``limit``, so followers cannot hold every connection's worth
/// of work), and whether the server is shutting down (each stream then ends within half a second, so draining
/// does not wait on them).
final class EventStreams: Sendable {
    static let limit = 256
    private let state = Mutex<(open: Int, closing: Bool)>((0, false))

    func open() -> Bool {
        state.withLock { state in
            guard !state.closing, state.open < Self.limit else { return false }
            state.open += 1
            return true
        }
    }

    func release() { state.withLock { $0.open -= 1 } }
    func close() { state.withLock { $0.closing = true } }
    var closing: Bool { state.withLock { $0.closing } }
    var count: Int { state.withLock { $0.open } }
}

extension ServerResponder {
    /// `GET /events`: the event stream as Server-Sent Events, for any key that may read (role read-only, deployer or
    /// admin; `Authorization: Bearer <key id>:<secret>` or SigV4). Each event goes out as `id: <sequence>` and one
    /// `data:` line of its JSON (EventBridge's shape); `Last-Event-ID` (what a browser's EventSource sends when it
    /// reconnects) or `?after=N` resumes after an event, `?deploymentId=` and `?applicationName=` filter. A comment
    /// line goes out every 15 s when nothing else does, so a proxy keeps the stream open.
    func eventStreamResponse(_ wire: WireRequest, keyId: inout String) -> WireResponse {
        func refuse(_ status: Int, _ code: String, _ message: String) -> WireResponse {
            WireResponse(status: status, contentType: "text/plain; charset=utf-8", text: message + "\n", operation: "EventStream", errorCode: code)
        }
        guard let role = authenticateGET(wire, keyId: &keyId) else {
            var refusal = refuse(401, "Unauthorized", "Sign the request, or send Authorization: Bearer <access key id>:<secret>.")
            refusal.headers.append(("WWW-Authenticate", "Bearer realm=\"deployctl\""))
            return refusal
        }
        guard role.allows("ListEvents") else {
            return refuse(403, "AccessDenied", "The access key \(keyId) (role \(role.rawValue)) may not read the event stream.")
        }
        let parameters = wire.parameters
        var members: [(String, JSONValue)] = []
        if let after = wire.header("last-event-id") ?? parameters["after"] { members.append(("after", .string(after))) }
        for name in ["deploymentId", "applicationName"] {
            if let value = parameters[name] { members.append((name, .string(value))) }
        }
        let query: StreamEventQuery
        do {
            query = try DeployctlOperation.eventQuery(.members(members))
        } catch {
            return refuse(400, error.code, error.message)
        }
        let streams = eventStreams
        guard streams.open() else {
            return refuse(503, "SlowDown", "The server has \(EventStreams.limit) event streams open, or is shutting down; retry shortly.")
        }
        let body = ResponseBody { [self] writer in
            defer { streams.release() }
            var after = query.after
            var lastWrite = ContinuousClock.now
            try await writer.write(ByteBuffer(string: "retry: 2000\n: deployctl event stream\n\n"))
            while !streams.closing, !Task.isCancelled {
                var next = query
                next.after = after
                next.limit = 200
                let page = next
                let found = try await onReaders { plane in try plane.events(page) }
                if !found.isEmpty {
                    var text = ""
                    for event in found { text += "id: \(event.sequence)\ndata: \(event.event.compact())\n\n" }
                    try await writer.write(ByteBuffer(string: text))
                    after = found[found.count - 1].sequence
                    lastWrite = ContinuousClock.now
                    continue
                }
                if ContinuousClock.now - lastWrite > .seconds(15) {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    lastWrite = ContinuousClock.now
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            try await writer.finish(nil)
        }
        return WireResponse(
            status: 200, headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"), ("X-Accel-Buffering", "no")], body: body,
            operation: "EventStream")
    }
}
