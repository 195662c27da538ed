import Foundation
import Testing

@testable import Agent

/// The line timestamps of scripts.log, formatted by hand rather than with `String(format:)`.
@Suite struct ScriptLogTimestampTests {
    /// 1970, a leap day, the last second of a year, a year before 1000 (zero-padded), one far ahead, and now.
    @Test(arguments: [0.0, 951_825_600, 1_798_761_599, -30_700_000_000, 32_503_680_000, Date().timeIntervalSince1970])
    func matchesPrintf(_ seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        var t = time_t(seconds)
        var parts = tm()
        localtime_r(&t, &parts)
        let expected = String(
            format: "%04d-%02d-%02d %02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        #expect(ScriptLog.timestamp(date) == expected)
    }
}
