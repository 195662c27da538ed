import Foundation

/// S3's REST-XML answers: error documents and the few result documents `deployctl server` sends, and reading the
/// `CompleteMultipartUpload` request. Text is escaped for XML; nothing here parses arbitrary XML.
public enum S3XML {
    public static let namespace = "http://s3.amazonaws.com/doc/2006-03-01/"
    public static let declaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

    /// `<Error><Code>…</Code><Message>…</Message>…</Error>`, as S3 sends with an HTTP error status.
    public static func error(code: String, message: String, resource: String? = nil, requestId: String) -> String {
        var body = declaration + "<Error><Code>\(escape(code))</Code><Message>\(escape(message))</Message>"
        if let resource { body += "<Resource>\(escape(resource))</Resource>" }
        return body + "<RequestId>\(escape(requestId))</RequestId></Error>"
    }

    /// `<name xmlns="…">children</name>`, where `children` is already XML.
    public static func document(_ name: String, _ children: String) -> String {
        declaration + "<\(name) xmlns=\"\(namespace)\">\(children)</\(name)>"
    }

    /// `<name>escaped text</name>`.
    public static func element(_ name: String, _ text: String) -> String {
        "<\(name)>\(escape(text))</\(name)>"
    }

    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // Characters XML 1.0 cannot carry are written as references a parser accepts or dropped.
                if scalar.value < 0x20, scalar != "\t", scalar != "\n", scalar != "\r" {
                    out += "&#x\(String(scalar.value, radix: 16));"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// ISO 8601 with milliseconds, as S3 writes `LastModified`: `2026-11-30T12:00:00.000Z`.
    public static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&t, &parts)
        let millis = Int((date.timeIntervalSince1970 - floor(date.timeIntervalSince1970)) * 1000)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// `Last-Modified` header form: `Mon, 30 Nov 2026 12:00:00 GMT`.
    public static func httpDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&t, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return String(
            format: "%@, %02d %@ %04d %02d:%02d:%02d GMT", days[Int(parts.tm_wday)], Int(parts.tm_mday), months[Int(parts.tm_mon)],
            Int(parts.tm_year) + 1900, Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// The parts a `CompleteMultipartUpload` body lists: `<Part><PartNumber>1</PartNumber><ETag>"…"</ETag></Part>…`
    /// (members in any order, other members ignored). Nil when the body is not such a list.
    /// S3's most parts in one upload.
    public static let maxParts = 10_000
    /// The largest CompleteMultipartUpload body: 10,000 parts with their checksums are about 3 MiB, so 8 MiB leaves
    /// room for whitespace and namespaces.
    public static let maxCompletionBytes = 8 << 20

    /// The parts a CompleteMultipartUpload lists, in order; nil when the XML is not what S3 accepts. Stops reading
    /// after ``maxParts`` + 1 parts (the caller refuses that many).
    public static func completedParts(_ body: String) -> [(number: Int, eTag: String)]? {
        var parts: [(number: Int, eTag: String)] = []
        var rest = body[...]
        while parts.count <= maxParts, let open = rest.range(of: "<Part>") {
            guard let close = rest.range(of: "</Part>", range: open.upperBound..<rest.endIndex) else { return nil }
            let part = rest[open.upperBound..<close.lowerBound]
            guard let number = value(of: "PartNumber", in: part).flatMap({ Int($0) }), (1...10_000).contains(number),
                let eTag = value(of: "ETag", in: part)
            else { return nil }
            parts.append((number, unescape(eTag)))
            rest = rest[close.upperBound...]
        }
        return parts.isEmpty ? nil : parts
    }

    /// The unescaped text of the first `<name>…</name>` in `text` (an S3 answer's `Code`, `UploadId`, `ETag`).
    public static func elementText(_ name: String, in text: String) -> String? {
        value(of: name, in: text[...]).map(unescape)
    }

    static func value(of name: String, in text: Substring) -> String? {
        guard let open = text.range(of: "<\(name)>"), let close = text.range(of: "</\(name)>", range: open.upperBound..<text.endIndex) else {
            return nil
        }
        return String(text[open.upperBound..<close.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#34;", with: "\"")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }
}
