import Foundation
import Testing

@testable import Agent

/// Whether a hook script starts with `#!` (run directly) or not (run with /bin/sh).
@Suite struct ShebangTests {
    @Test func onlyAFileStartingWithHashBangHasOne() throws {
        let directory = FileManager.default.temporaryDirectory.path + "/shebang-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cases: [(String, String, Bool)] = [
            ("script", "#!/bin/sh\necho hi\n", true), ("bare", "echo hi\n", false), ("short", "#", false), ("empty", "", false),
            ("late", " #!/bin/sh\n", false),
        ]
        for (name, text, expected) in cases {
            try text.write(toFile: directory + "/" + name, atomically: false, encoding: .utf8)
            #expect(HookRunner.hasShebang(directory + "/" + name) == expected, "\(name)")
        }
        #expect(!HookRunner.hasShebang(directory + "/missing"))
    }
}
