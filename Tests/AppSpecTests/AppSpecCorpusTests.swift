import AppSpec
import Foundation
import Testing

enum Corpus {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/appspecs")

    static func files(_ kind: String) -> [String] {
        let dir = root.appendingPathComponent(kind)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".yml") }.sorted()
    }

    static func text(_ kind: String, _ name: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(kind).appendingPathComponent(name), encoding: .utf8)
    }
}

@Suite struct AppSpecCorpusTests {
    /// Each broken appspec produces exactly the findings in its `.expected` file (one per line).
    /// `DEPLOYCTL_UPDATE_GOLDEN=1 swift test --filter AppSpecCorpus` rewrites them after a deliberate change.
    @Test(arguments: Corpus.files("invalid"))
    func invalidAppSpecProducesItsExpectedMessages(_ name: String) throws {
        let report = AppSpecParser.parse(try Corpus.text("invalid", name), fileName: name)
        let actual = report.findings.map(\.description).joined(separator: "\n") + "\n"
        let expectedURL = Corpus.root.appendingPathComponent("invalid").appendingPathComponent(
            name.replacingOccurrences(of: ".yml", with: ".expected"))
        if ProcessInfo.processInfo.environment["DEPLOYCTL_UPDATE_GOLDEN"] == "1" {
            try Data(actual.utf8).write(to: expectedURL)
        }
        let expected = try String(contentsOf: expectedURL, encoding: .utf8)
        #expect(actual == expected)
        #expect(!report.errors.isEmpty, "\(name) must be refused")
        #expect(report.appSpec == nil)
        // Every error says where it is (but for whole-file problems) and is one line.
        for finding in report.errors {
            #expect(!finding.message.contains("\n"))
        }
    }

    @Test func theInvalidCorpusIsLarge() {
        #expect(Corpus.files("invalid").count >= 40)
    }

    @Test(arguments: Corpus.files("valid"))
    func validAppSpecHasNoErrors(_ name: String) throws {
        let report = AppSpecParser.parse(try Corpus.text("valid", name), fileName: name)
        #expect(report.errors.isEmpty, "\(report.errors.map(\.description))")
        #expect(report.appSpec != nil)
    }
}
