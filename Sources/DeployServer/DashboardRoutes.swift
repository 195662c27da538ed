import AWSWire
import ControlPlane
import Dashboard
import DeployModel
import Foundation
import Hummingbird
import NIOCore

/// `/ui/`: the dashboard. Sign-in takes an access key id and secret once and sets a session cookie (`HttpOnly`,
/// `Secure`, `SameSite=Strict`, eight hours); every other page needs it, every form carries the session's CSRF
/// token, and each action is allowed only to the roles the API allows it to. Pages render on the reader threads,
/// actions run on the writer, as the API's calls do.
struct DashboardRoutes {
    static let prefix = "/ui"
    static let maxFormBytes = 16 << 10
    static let securityHeaders = [
        (
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'"
        ),
        ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY"), ("Cache-Control", "no-store"),
    ]

    let responder: ServerResponder

    static func matches(_ wire: WireRequest) -> Bool { wire.path == prefix || wire.path.hasPrefix(prefix + "/") }

    /// The path's segments after `/ui`, decoded.
    static func segments(_ path: String) -> [String] {
        path.dropFirst(prefix.count).split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
    }

    func page(_ status: Int, _ html: String, extra: [(String, String)] = []) -> WireResponse {
        var answer = WireResponse(status: status, contentType: "text/html; charset=utf-8", text: html, operation: "Dashboard")
        answer.headers += Self.securityHeaders + extra
        return answer
    }

    func redirect(_ location: String, extra: [(String, String)] = []) -> WireResponse {
        var answer = WireResponse(status: 303, headers: [("Location", location), ("Content-Length", "0")] + extra, operation: "Dashboard")
        answer.headers += Self.securityHeaders
        return answer
    }

    static func cookie(_ value: String, maxAge: Int) -> (String, String) {
        ("Set-Cookie", "\(DashboardSessions.cookieName)=\(value); Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=\(maxAge)")
    }

    /// The viewer of a request with a live session whose key still works (deactivated keys stop within seconds).
    func viewer(_ wire: WireRequest) -> (viewer: Viewer, session: String, role: AccessRole)? {
        guard let id = DashboardSessions.id(inCookieHeader: wire.header("cookie")), let session = responder.sessions.session(id) else { return nil }
        guard let key = responder.credentials.lookup(session.accessKeyId) else {
            responder.sessions.close(id)
            return nil
        }
        let role = key.role
        return (
            Viewer(
                accessKeyId: session.accessKeyId, userName: key.userName, role: role.rawValue, csrfToken: session.csrfToken,
                allows: { role.allows($0) }), id, role
        )
    }

    func handle(_ request: Request, _ wire: WireRequest, keyId: inout String) async -> WireResponse {
        let parts = Self.segments(wire.path)
        if wire.method == "GET", parts.count == 2, parts[0] == "static", let asset = DashboardAssets.files[parts[1]] {
            var answer = WireResponse(status: 200, contentType: asset.contentType, text: asset.text, operation: "Dashboard")
            answer.headers += [("Cache-Control", "max-age=300"), ("X-Content-Type-Options", "nosniff")]
            return answer
        }
        // A browser says where a form came from: a POST from another site is refused before anything else (the
        // session's CSRF token is the check for forms; this one also covers the sign-in form, which has no session).
        if wire.method == "POST", let origin = wire.header("origin"),
            URL(string: origin)?.host.map({ host in
                let port = URL(string: origin)?.port.map { ":\($0)" } ?? ""
                let named = host.contains(":") ? "[\(host)]" : host
                return wire.header("host")?.lowercased() != (named + port).lowercased()
            }) ?? true
        {
            return page(403, Dashboard.message("Refused", "This form was sent from another site (Origin \(origin.prefix(100))).", viewer: nil))
        }
        if parts == ["signin"] {
            if wire.method == "GET" { return page(200, Dashboard.signIn(error: nil)) }
            if wire.method == "POST" { return await signIn(request, keyId: &keyId) }
        }
        guard let (viewer, session, role) = viewer(wire) else {
            return wire.method == "GET" ? redirect("/ui/signin") : page(403, Dashboard.message("Signed out", "Sign in again.", viewer: nil))
        }
        keyId = viewer.accessKeyId
        if wire.method == "POST" {
            let form: [String: String]
            do {
                form = SNSRoutes.form(
                    String(decoding: Data((try await request.body.collect(upTo: Self.maxFormBytes)).readableBytesView), as: UTF8.self))
            } catch {
                return page(413, Dashboard.message("Too large", "The form is larger than \(Self.maxFormBytes) bytes.", viewer: viewer))
            }
            // Every form carries the session's token: a page elsewhere cannot post here in the viewer's name.
            guard let token = form["csrf"], DashboardSessions.same(token, viewer.csrfToken) else {
                return page(
                    403,
                    Dashboard.message(
                        "Refused", "This form is out of date or did not come from this dashboard (CSRF check). Reload the page and try again.",
                        viewer: viewer))
            }
            if parts == ["signout"] {
                responder.sessions.close(session)
                return redirect("/ui/signin", extra: [Self.cookie("", maxAge: 0)])
            }
            if parts.count == 3, parts[0] == "deployments", let operation = Dashboard.operation(ofAction: parts[2]) {
                return await act(parts[2], deploymentId: parts[1], operation: operation, form: form, viewer: viewer, role: role)
            }
            return page(404, Dashboard.message("Not found", "No such action.", viewer: viewer))
        }
        guard wire.method == "GET" else { return page(405, Dashboard.message("Not allowed", "GET or POST only.", viewer: viewer)) }
        return await show(parts, wire.parameters, viewer: viewer, role: role)
    }

    func show(_ parts: [String], _ query: [String: String], viewer: Viewer, role: AccessRole) async -> WireResponse {
        if parts.isEmpty { return redirect("/ui/deployments") }
        guard role.allows("ListDeployments") else {
            return page(403, Dashboard.message("Not allowed", "The role \(role.rawValue) may not read deployments.", viewer: viewer))
        }
        do {
            let plane = responder.dashboardPlane
            let started = ContinuousClock.now
            let (html, reads): (String?, Int) = try await responder.readers.perform {
                try CountedReads.counting { try render(Dashboard(plane: plane), parts, query, viewer: viewer) }
            }
            guard let html else {
                return page(404, Dashboard.message("Not found", "There is no such page (or it is not yours to see).", viewer: viewer))
            }
            let elapsed = ContinuousClock.now - started
            let millis = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            return page(200, html, extra: [("Server-Timing", String(format: "render;dur=%.2f;desc=\"%d store reads\"", millis, reads))])
        } catch {
            return page(500, Dashboard.message("Something went wrong", "\(error)", viewer: viewer))
        }
    }

    /// The page `parts` names, or nil.
    func render(_ dashboard: Dashboard, _ parts: [String], _ query: [String: String], viewer: Viewer) throws -> String? {
        switch parts.count {
        case 1 where parts[0] == "deployments": return try dashboard.deployments(query, viewer: viewer)
        case 2 where parts[0] == "deployments": return try dashboard.deployment(parts[1], viewer: viewer, part: query["part"])
        case 3 where parts[0] == "deployments":
            guard let operation = Dashboard.operation(ofAction: parts[2]), viewer.allows(operation) else { return nil }
            return try dashboard.confirmation(parts[2], deploymentId: parts[1], viewer: viewer)
        case 1 where parts[0] == "applications": return try dashboard.applications(viewer: viewer)
        case 4 where parts[0] == "applications" && parts[2] == "groups":
            return try dashboard.group(application: parts[1], name: parts[3], viewer: viewer)
        case 1 where parts[0] == "instances": return try dashboard.instances(query, viewer: viewer)
        case 2 where parts[0] == "instances": return try dashboard.instance(parts[1], viewer: viewer)
        default: return nil
        }
    }

    func act(_ action: String, deploymentId: String, operation: String, form: [String: String], viewer: Viewer, role: AccessRole) async
        -> WireResponse
    {
        guard role.allows(operation) else {
            return page(
                403,
                Dashboard.message(
                    "Not allowed", "The access key \(viewer.accessKeyId) (role \(role.rawValue)) may not call \(operation).", viewer: viewer))
        }
        let user = viewer.userName.isEmpty ? viewer.accessKeyId : viewer.userName
        do {
            let next = try await responder.onWriter { plane in
                try Dashboard(plane: plane).perform(action, deploymentId: deploymentId, form: form, user: user)
            }
            // New work for some instances: their agents' held polls look again.
            responder.waiters.wakeAll()
            var unreserved = CharacterSet.alphanumerics
            unreserved.insert(charactersIn: "-._~")
            return redirect("/ui/deployments/\(next.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "")")
        } catch let error as ServiceError {
            return page(400, Dashboard.message("\(operation) refused", "\(error.code): \(error.message)", viewer: viewer))
        } catch {
            return page(503, Dashboard.message("Try again", "\(error)", viewer: viewer))
        }
    }

    /// Checks the key once; a key that may not read deployments (an instance's, a scraper's) cannot sign in.
    func signIn(_ request: Request, keyId: inout String) async -> WireResponse {
        guard let buffer = try? await request.body.collect(upTo: Self.maxFormBytes) else {
            return page(413, Dashboard.signIn(error: "The form is too large."))
        }
        let form = SNSRoutes.form(String(decoding: Data(buffer.readableBytesView), as: UTF8.self))
        let id = (form["accessKeyId"] ?? "").trimmingCharacters(in: .whitespaces)
        guard let key = responder.credentials.lookup(id), SigV4.constantTimeEqual(key.secret, form["secretAccessKey"] ?? "") else {
            return page(401, Dashboard.signIn(error: "That access key ID and secret access key do not match an active key."))
        }
        keyId = id
        guard key.role.allows("ListDeployments") else {
            return page(
                403,
                Dashboard.signIn(
                    error: "A key of role \(key.role.rawValue) cannot use the dashboard; sign in with a read-only, deployer or admin key."))
        }
        let session = responder.sessions.open(accessKeyId: id)
        return redirect("/ui/deployments", extra: [Self.cookie(session, maxAge: Int(DashboardSessions.lifetime))])
    }
}
