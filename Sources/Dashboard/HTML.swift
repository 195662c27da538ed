import DeployModel
import Foundation

/// Text made safe for HTML: everything a user or a hook wrote goes through here before it reaches a page (hook output
/// is hostile input).
enum HTML {
    static func escape(_ text: String) -> String {
        // Most text (ids, statuses, names) has nothing to escape: answered as it is.
        if !text.utf8.contains(where: {
            $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 || ($0 < 0x20 && $0 != 0x09 && $0 != 0x0A)
        }) {
            return text
        }
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters other than tab and newline are shown, never passed to the browser.
                if scalar.value < 0x20, scalar != "\t", scalar != "\n" {
                    out += "\\x" + String(format: "%02x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A path segment or query value.
    static func component(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// `2026-12-07 05:12:01 UTC`.
    static func time(_ date: Date?) -> String {
        guard let date else { return "—" }
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d UTC", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour),
            Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// `1.4 s`, `3 min 05 s`, `2 h 03 min`.
    static func duration(from start: Date?, to end: Date?) -> String {
        guard let start else { return "—" }
        let seconds = max(0, (end ?? Date()).timeIntervalSince(start))
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : String(value) }
        if seconds < 10 {
            let tenths = Int((seconds * 10).rounded())
            return "\(tenths / 10).\(tenths % 10) s"
        }
        if seconds < 60 { return "\(Int(seconds)) s" }
        if seconds < 3600 { return "\(Int(seconds) / 60) min \(two(Int(seconds) % 60)) s" }
        return "\(Int(seconds) / 3600) h \(two(Int(seconds) % 3600 / 60)) min"
    }

    /// A status as text and as a class (colour is never the only sign).
    static func status(_ text: String?) -> String {
        let value = text ?? "Unknown"
        return "<span class=\"status s-\(escape(value.lowercased()))\">\(escape(value))</span>"
    }

    static func revision(_ location: RevisionLocation?) -> String {
        guard let location else { return "—" }
        if let s3 = location.s3Location {
            return "s3://\(s3.bucket ?? "")/\(s3.key ?? "")" + (s3.version.map { " (\($0))" } ?? "")
        }
        if let git = location.gitHubLocation { return "\(git.repository ?? "") @ \(String((git.commitId ?? "").prefix(12)))" }
        return location.revisionType?.rawValue ?? "—"
    }
}

/// Who is looking at a page: their key, its role, and the session's CSRF token (every form carries it).
public struct Viewer: Sendable {
    public var accessKeyId: String
    public var userName: String
    public var role: String
    public var csrfToken: String
    /// Whether the role may call an operation (`StopDeployment`, ...): buttons are shown only for those.
    public var allows: @Sendable (String) -> Bool

    public init(accessKeyId: String, userName: String, role: String, csrfToken: String, allows: @escaping @Sendable (String) -> Bool) {
        self.accessKeyId = accessKeyId
        self.userName = userName
        self.role = role
        self.csrfToken = csrfToken
        self.allows = allows
    }
}

/// The page around every view: navigation, who is signed in, sign-out.
enum Layout {
    static func page(title: String, viewer: Viewer?, current: String = "", body: String, script: Bool = false) -> String {
        var nav = ""
        if let viewer {
            let links = [("deployments", "Deployments"), ("applications", "Applications"), ("instances", "Instances")]
            nav =
                "<nav aria-label=\"Main\"><ul>"
                + links.map { path, label in
                    "<li><a href=\"/ui/\(path)\"\(current == path ? " aria-current=\"page\"" : "")>\(label)</a></li>"
                }.joined()
                + "</ul><form method=\"post\" action=\"/ui/signout\" class=\"signout\">\(csrfField(viewer))"
                + "<span class=\"who\">\(HTML.escape(viewer.userName.isEmpty ? viewer.accessKeyId : viewer.userName)) (\(HTML.escape(viewer.role)))</span> "
                + "<button type=\"submit\">Sign out</button></form></nav>"
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(HTML.escape(title)) · deployctl</title><link rel="stylesheet" href="/ui/static/style.css">\(script ? "<script src=\"/ui/static/live.js\" defer></script>" : "")</head>
            <body><header><a class="brand" href="/ui/deployments">deployctl</a>\(nav)</header>
            <main id="main">\(body)</main></body></html>
            """
    }

    static func csrfField(_ viewer: Viewer) -> String {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(viewer.csrfToken))\">"
    }
}
