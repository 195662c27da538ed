import Foundation

/// The built `deployctl` the end-to-end tests run: `$DEPLOYCTL_BIN`, else the one next to the test bundle
/// (`.build/debug/deployctl`), else the package's `.build/debug/deployctl`.
public enum BuiltBinary {
    public static let path: String = {
        if let explicit = ProcessInfo.processInfo.environment["DEPLOYCTL_BIN"] { return explicit }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("deployctl").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/deployctl").path
    }()

    /// The package's root directory (for Fixtures/ and Scripts/).
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
}
