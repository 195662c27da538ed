import DeployModel

/// Renders a response as the aws CLI does for `--output json|text|table`.
public enum OutputFormatter {
    public static func format(_ value: JSONValue, as format: OutputFormat, operation: String) -> String {
        if case .object(let members) = value, members.isEmpty { return "" }
        switch format {
        case .json: return value.rendered() + "\n"
        case .text:
            var out = ""
            TextFormat.write(value, identifier: nil, scalarKeys: nil, into: &out)
            return out
        case .table: return TableFormat.render(value, title: operation)
        }
    }
}

/// awscli/text.py: scalars of an object on one tab-separated line (sorted by key) prefixed by the parent key in
/// upper case; nested objects and lists on lines of their own.
enum TextFormat {
    static func scalarText(_ value: JSONValue) -> String {
        switch value {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return "\(d)"
        case .string(let s): return TerminalText.safe(s)
        default: return ""
        }
    }

    static func isScalar(_ value: JSONValue) -> Bool {
        switch value {
        case .array, .object: return false
        default: return true
        }
    }

    static func write(_ value: JSONValue, identifier: String?, scalarKeys: [String]?, into out: inout String) {
        switch value {
        case .object(let members):
            var scalars: [String] = []
            var nested: [(String, JSONValue)] = []
            if let scalarKeys {
                // text.py: a key this object lacks is an empty cell (a key it has with null is "None").
                for key in scalarKeys { scalars.append(members.first { $0.key == key }.map { scalarText($0.value) } ?? "") }
                for member in members.sorted(by: { $0.key < $1.key }) where !scalarKeys.contains(member.key) {
                    nested.append((member.key, member.value))
                }
            } else {
                for member in members.sorted(by: { $0.key < $1.key }) {
                    if isScalar(member.value) { scalars.append(scalarText(member.value)) } else { nested.append((member.key, member.value)) }
                }
            }
            if !scalars.isEmpty {
                if let identifier { scalars.insert(identifier.uppercased(), at: 0) }
                out += scalars.joined(separator: "\t") + "\n"
            }
            for (key, child) in nested { write(child, identifier: key, scalarKeys: nil, into: &out) }
        case .array(let items):
            guard !items.isEmpty else { return }
            if items.contains(where: { if case .object = $0 { return true } else { return false } }) {
                var keys = Set<String>()
                for case .object(let members) in items {
                    for member in members where isScalar(member.value) { keys.insert(member.key) }
                }
                let sortedKeys = keys.sorted()
                for item in items { write(item, identifier: identifier, scalarKeys: sortedKeys, into: &out) }
            } else {
                let scalars = items.filter(isScalar)
                if !scalars.isEmpty {
                    if let identifier {
                        for item in scalars { out += identifier.uppercased() + "\t" + scalarText(item) + "\n" }
                    } else {
                        out += scalars.map(scalarText).joined(separator: "\t") + "\n"
                    }
                }
                for item in items where !isScalar(item) { write(item, identifier: identifier, scalarKeys: nil, into: &out) }
            }
        default:
            out += scalarText(value) + "\n"
        }
    }
}

/// A table close to awscli/table.py: a titled box, key/value rows sorted by key, nested sections indented by one border.
enum TableFormat {
    enum Block {
        case title(String)
        /// Rows of cells; with a header when the rows come from a list of objects.
        case rows([[String]], header: [String]? = nil)
    }

    static func render(_ value: JSONValue, title: String) -> String {
        var sections: [(depth: Int, block: Block)] = [(0, .title(title))]
        collect(value, depth: 0, into: &sections)
        var contentWidth = title.count + 4
        for section in sections {
            if case .rows(let rows, let header) = section.block {
                let widths = columnWidths(rows + (header.map { [$0] } ?? []))
                let inner = widths.reduce(0, +) + widths.count * 4 - 1
                contentWidth = max(contentWidth, inner + section.depth * 2)
            } else if case .title(let t) = section.block {
                contentWidth = max(contentWidth, t.count + 4 + section.depth * 2)
            }
        }
        var out = String(repeating: "-", count: contentWidth + 2) + "\n"
        for (index, section) in sections.enumerated() {
            let left = String(repeating: "|", count: section.depth + 1)
            let width = contentWidth - section.depth * 2
            switch section.block {
            case .title(let t):
                out += left + center(t, width) + String(repeating: "|", count: section.depth + 1) + "\n"
                if index + 1 < sections.count, case .rows = sections[index + 1].block {
                } else {
                    out +=
                        String(repeating: "|", count: section.depth) + "+" + String(repeating: "-", count: width) + "+"
                        + String(repeating: "|", count: section.depth) + "\n"
                }
            case .rows(let rows, let header):
                var widths = columnWidths(rows + (header.map { [$0] } ?? []))
                let used = widths.reduce(0, +) + widths.count * 3 + (widths.count - 1)
                if used < width, !widths.isEmpty { widths[widths.count - 1] += width - used }
                let rule =
                    String(repeating: "|", count: section.depth) + "+"
                    + widths.map { String(repeating: "-", count: $0 + 3) }.joined(separator: "+") + "+"
                    + String(repeating: "|", count: section.depth)
                out += rule + "\n"
                if let header {
                    let cells = header.enumerated().map { i, cell in center(cell, widths[i] + 3) }
                    out += left + cells.joined(separator: "|") + String(repeating: "|", count: section.depth + 1) + "\n"
                    out += rule + "\n"
                }
                for row in rows {
                    let cells = row.enumerated().map { i, cell in "  " + cell.padded(to: widths[i] + 1) }
                    out += left + cells.joined(separator: "|") + String(repeating: "|", count: section.depth + 1) + "\n"
                }
                out += rule + "\n"
            }
        }
        return out
    }

    static func columnWidths(_ rows: [[String]]) -> [Int] {
        var widths: [Int] = []
        for row in rows {
            for (i, cell) in row.enumerated() {
                if i >= widths.count { widths.append(cell.count) } else { widths[i] = max(widths[i], cell.count) }
            }
        }
        return widths
    }

    static func center(_ text: String, _ width: Int) -> String {
        let pad = max(0, width - text.count)
        return String(repeating: " ", count: pad / 2) + text + String(repeating: " ", count: pad - pad / 2)
    }

    static func collect(_ value: JSONValue, depth: Int, into sections: inout [(depth: Int, block: Block)]) {
        switch value {
        case .object(let members):
            let sorted = members.sorted { $0.key < $1.key }
            let scalars = sorted.filter { TextFormat.isScalar($0.value) }
            if !scalars.isEmpty {
                sections.append((depth, .rows(scalars.map { [$0.key, TextFormat.scalarText($0.value)] })))
            }
            for member in sorted where !TextFormat.isScalar(member.value) && !member.value.isEmptyContainer {
                sections.append((depth + 1, .title(member.key)))
                collect(member.value, depth: depth + 1, into: &sections)
            }
        case .array(let items):
            let scalars = items.filter(TextFormat.isScalar)
            if !scalars.isEmpty { sections.append((depth, .rows(scalars.map { [TextFormat.scalarText($0)] }))) }
            let objects = items.compactMap { item -> [JSONMember]? in
                if case .object(let members) = item { return members }
                return nil
            }
            if !objects.isEmpty, objects.count == items.count - scalars.count {
                // A list of objects is one grid: a column per scalar member, a row per object.
                let keys = Set(objects.flatMap { $0.filter { TextFormat.isScalar($0.value) }.map(\.key) }).sorted()
                if !keys.isEmpty {
                    let rows = objects.map { members in
                        keys.map { key in members.first { $0.key == key }.map { TextFormat.scalarText($0.value) } ?? "" }
                    }
                    sections.append((depth, .rows(rows, header: keys)))
                }
                for members in objects {
                    for member in members.sorted(by: { $0.key < $1.key })
                    where !TextFormat.isScalar(member.value) && !member.value.isEmptyContainer {
                        sections.append((depth + 1, .title(member.key)))
                        collect(member.value, depth: depth + 1, into: &sections)
                    }
                }
                return
            }
            for item in items where !TextFormat.isScalar(item) { collect(item, depth: depth, into: &sections) }
        default:
            sections.append((depth, .rows([[TextFormat.scalarText(value)]])))
        }
    }
}

extension String {
    /// Padded with spaces, or cut, to `width` characters: `padding(toLength:withPad:startingAt:)` without its trip
    /// through NSString (5% of a trivial `deployctl local`, whose event lines use it), and counting characters as the
    /// column widths do rather than UTF-16 units.
    func padded(to width: Int) -> String {
        let length = count
        return length >= width ? String(prefix(width)) : self + String(repeating: " ", count: width - length)
    }
}
