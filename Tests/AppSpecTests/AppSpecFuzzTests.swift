import AppSpec
import Foundation
import TestSupport
import Testing

@Suite struct AppSpecFuzzTests {
    static let fragments = [
        "version: 0.0\n", "os: linux\n", "hooks:\n", "  BeforeInstall:\n", "    - location: a.sh\n", "      timeout: 30\n",
        "files:\n", "  - source: /\n", "    destination: /opt/x\n", "permissions:\n", "  - object: /opt\n", "    mode: 0644\n",
        "    acls: [u:a:rw, 'd:g:b:7']\n", "    context: {type: t, range: s0-s1:c0.c3}\n", "- ", ": ", "[", "]", "{", "}", "&a ", "*a", "!!str ",
        "'", "\"", "\t", "\n", "  ", "~", "null", "0x1F", "1e9", "-", "?", "|", ">", "%YAML 1.1\n", "---\n", "...\n", "\u{00e9}", "\u{1F680}",
        "\u{0000}", "type: [file, directory]\n", "runas: root\n", "file_exists_behavior: RETAIN\n",
    ]

    /// 8,000 generated and mutated documents: the parser returns findings and never traps.
    @Test func randomAndMutatedDocumentsNeverCrash() throws {
        var rng = SplitMix64(seed: 0xD3_9107)
        let corpus = try Corpus.files("valid").map { try Corpus.text("valid", $0) } + Corpus.files("invalid").map { try Corpus.text("invalid", $0) }
        var parsed = 0
        var accepted = 0
        for round in 0..<8000 {
            var text: String
            if round % 2 == 0, let base = corpus.randomElement(using: &rng) {
                var scalars = Array(base.unicodeScalars)
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    let choice = Int.random(in: 0..<4, using: &rng)
                    let at = scalars.isEmpty ? 0 : Int.random(in: 0..<scalars.count, using: &rng)
                    switch choice {
                    case 0 where !scalars.isEmpty: scalars.remove(at: at)
                    case 1: scalars.insert(contentsOf: Self.fragments.randomElement(using: &rng)?.unicodeScalars ?? "".unicodeScalars, at: at)
                    case 2 where !scalars.isEmpty: scalars[at] = Unicode.Scalar(UInt8.random(in: 32...126, using: &rng))
                    default: scalars = Array(scalars.prefix(at))
                    }
                }
                text = String(String.UnicodeScalarView(scalars))
            } else {
                text = (0..<Int.random(in: 0...25, using: &rng)).map { _ in Self.fragments.randomElement(using: &rng) ?? "" }.joined()
            }
            let report = AppSpecParser.parse(text)
            parsed += 1
            if report.appSpec != nil {
                accepted += 1
                #expect(report.errors.isEmpty)
            } else {
                #expect(!report.errors.isEmpty, "rejected without an error: \(text.debugDescription)")
            }
        }
        #expect(parsed == 8000)
        #expect(accepted > 0)
    }

    /// Alias- and depth-heavy documents (issue 9, item 6): billion-laughs fan-outs in every section, aliases of
    /// mappings with large lists, deep flow and block nesting. Each is answered in bounded time, with an error
    /// when it stands for too much, and memory stays bounded over the whole run.
    @Test func aliasAndDepthHeavyDocumentsAreBoundedInTimeAndMemory() throws {
        var rng = SplitMix64(seed: 0xA11A5)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let startPeak = usage.ru_maxrss
        var refused = 0
        var slowest = 0.0
        let sections = ["files", "permissions", "hooks", "x"]
        for round in 0..<300 {
            var lines = ["version: 0.0", "os: linux"]
            switch round % 3 {
            case 0:
                // A fan-out of aliases: `levels` levels of `fanout` references each.
                let fanout = Int.random(in: 2...12, using: &rng)
                let levels = Int.random(in: 2...9, using: &rng)
                lines.append("x0: &l0 [" + Array(repeating: "u:a:rw", count: fanout).joined(separator: ", ") + "]")
                for level in 1...levels {
                    lines.append("x\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: fanout).joined(separator: ", ") + "]")
                }
                lines.append("\(sections.randomElement(using: &rng) ?? "files"): *l\(levels)")
            case 1:
                // The permissions shape of the review: n permissions sharing one mapping with an n-entry ACL list.
                let n = Int.random(in: 100...3000, using: &rng)
                lines.append("acl: &A [" + (0..<n).map { "u:user\($0):rwx" }.joined(separator: ", ") + "]")
                lines.append("p: &P {object: /tmp, acls: *A}")
                lines.append("permissions: [" + Array(repeating: "*P", count: n).joined(separator: ", ") + "]")
            default:
                // Deep nesting, in flow and in block style.
                let depth = Int.random(in: 10...1500, using: &rng)
                if Bool.random(using: &rng) {
                    lines.append("files: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
                } else {
                    lines.append("hooks:")
                    for level in 0..<min(depth, 300) { lines.append(String(repeating: " ", count: level + 1) + "k\(level):") }
                }
            }
            let start = Date()
            let report = AppSpecParser.parse(lines.joined(separator: "\n") + "\n")
            let seconds = Date().timeIntervalSince(start)
            slowest = max(slowest, seconds)
            // A hang guard, not a benchmark: without the node budget these took minutes; a debug build sharing two
            // busy cores answers in well under a second (the binary: ~50 ms, RevisionCommandTests.anAliasBombIsRefusedAtOnce).
            #expect(seconds < 10, "round \(round) (kind \(round % 3)) took \(seconds) s")
            if report.errors.contains(where: { $0.message.contains("YAML nodes once its aliases") || $0.message.contains("levels deep") }) {
                refused += 1
            }
        }
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let growthMiB = (usage.ru_maxrss - startPeak) / 1024
        #expect(growthMiB < 256, "peak memory grew by \(growthMiB) MiB")
        #expect(refused > 50, "only \(refused) documents were refused for their size (slowest \(slowest) s)")
    }
}
