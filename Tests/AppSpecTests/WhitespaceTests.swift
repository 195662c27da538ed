import Foundation
import Testing

@testable import AppSpec

/// The appspec parser trims scalars itself instead of through `NSString`; Foundation stays the reference.
@Suite struct WhitespaceTests {
    @Test func theSameScalarsAsFoundationsWhitespaceSet() {
        var differing: [UInt32] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            if String.isSpaceOrTab(scalar) != CharacterSet.whitespaces.contains(scalar) { differing.append(value) }
        }
        #expect(differing.isEmpty, "\(differing.prefix(20).map { String($0, radix: 16) })")
    }

    @Test(arguments: [
        "", " ", "\t\t", "0.0", " 0.0 ", "\t 0.0\u{3000}", "a b", "\u{A0}x\u{A0}", "x\n", "\nx", " \u{301}x", "x \u{301}", "é ", " 🚀 ",
        "\u{2009}60\u{200A}",
    ])
    func trimsWhatFoundationTrims(_ text: String) {
        #expect(text.trimmingSpacesAndTabs == text.trimmingCharacters(in: .whitespaces))
        #expect(Array(text.trimmingSpacesAndTabs.unicodeScalars) == Array(text.trimmingCharacters(in: .whitespaces).unicodeScalars))
    }
}
