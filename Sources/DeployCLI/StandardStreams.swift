import Foundation

/// Writes to stdout and stderr through `write(2)`: Foundation's `FileHandle.write(_:)` traps on any error (a full
/// disk behind a redirect, a closed pipe), and a CLI must never crash on where its output goes.
enum StandardStreams {
    /// Writes all of `text` to stdout; a failure becomes a CLI error naming the cause.
    static func out(_ text: String) throws {
        if let code = write(Array(text.utf8), to: STDOUT_FILENO) {
            throw CLIFailure.other("cannot write the output: \(String(cString: strerror(code)))")
        }
    }

    /// Writes to stderr; nothing else can be told if that fails, so a failure is ignored.
    static func err(_ text: String) {
        _ = write(Array(text.utf8), to: STDERR_FILENO)
    }

    /// Returns the errno of a failed write, nil when every byte went out.
    private static func write(_ bytes: [UInt8], to fd: Int32) -> Int32? {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { raw in Glibc.write(fd, raw.baseAddress.map { $0 + written }, bytes.count - written) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return n < 0 ? errno : EIO }
            written += n
        }
        return nil
    }
}

/// Text from the state or from a hook (names, messages, log tails) made safe to show on a terminal: control
/// characters (an escape sequence a hook printed could rewrite the operator's screen) become visible `\x1b`.
enum TerminalText {
    static func safe(_ text: String, keepingTabs: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0) && !(keepingTabs && $0 == "\t") }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar), !(keepingTabs && scalar == "\t") {
                out += scalar.value <= 0xff ? "\\x" + String(format: "%02x", scalar.value) : "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value)
    }
}
