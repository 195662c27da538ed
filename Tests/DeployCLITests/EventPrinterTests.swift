import Foundation
import Testing

@testable import DeployCLI

/// The event durations `deployctl local` prints, formatted by hand rather than with `String(format:)`.
@Suite struct EventPrinterTests {
    @Test(arguments: [0.0, 0.0004, 0.0005, 0.001, 0.0125, 1.5, 2.0004, 59.9996, 1234.5678, 123_456.789])
    func secondsMatchPrintfsThreeDecimals(_ interval: Double) {
        // printf rounds half to even on the binary value; the hand formatter rounds half away from zero on
        // milliseconds: they agree wherever the value is not exactly on a half millisecond.
        let expected = String(format: "%8.3fs", interval)
        if interval == 0.0005 {
            #expect(EventPrinter.seconds(interval) == "   0.001s")
        } else {
            #expect(EventPrinter.seconds(interval) == expected)
        }
    }

    @Test func negativeIntervalsShowAsZero() {
        #expect(EventPrinter.seconds(-3) == "   0.000s")
    }

    @Test(arguments: ["", "Install", "AfterBlockTraffic", "ApplicationStopFailedOnALongName"])
    func paddedMatchesFoundationOnASCII(_ text: String) {
        for width in [0, 6, 20] {
            #expect(text.padded(to: width) == text.padding(toLength: width, withPad: " ", startingAt: 0))
        }
    }

    @Test func paddedCountsCharactersAsTheColumnWidthsDo() {
        // One character, two UTF-16 units: Foundation's padding counted it twice and left the column one short.
        #expect("🚀a".padded(to: 4) == "🚀a  ")
        #expect("🚀a".padded(to: 4).count == 4)
        #expect("héllo".padded(to: 3) == "hél")
    }
}
