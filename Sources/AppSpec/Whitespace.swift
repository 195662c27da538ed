extension String {
    /// Whether `scalar` is whitespace as Foundation's `CharacterSet.whitespaces` has it: tab and the Unicode space
    /// separators (category Zs) and, as Foundation has it, U+200B ZERO WIDTH SPACE; not line breaks.
    static func isSpaceOrTab(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x20, 0xA0, 0x1680, 0x2000...0x200B, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }

    /// The string without the leading and trailing ``isSpaceOrTab(_:)`` scalars: what
    /// `trimmingCharacters(in: .whitespaces)` returns, without bridging through `NSString`, whose first use costs a
    /// trivial `deployctl local` three conformance scans of the whole binary (issue 12).
    var trimmingSpacesAndTabs: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !Self.isSpaceOrTab($0) }),
            let last = scalars.lastIndex(where: { !Self.isSpaceOrTab($0) })
        else { return "" }
        return String(scalars[first...last])
    }
}
