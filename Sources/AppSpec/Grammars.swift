/// "Did you mean …?" for misspelt keys and names.
public enum Suggestion {
    /// The candidate closest to `name` (case-insensitive equality, else edit distance at most 2, else a
    /// candidate containing it), or nil.
    public static func closest(to name: String, in candidates: [String], allowContainment: Bool = true) -> String? {
        let lower = name.lowercased()
        if let exact = candidates.first(where: { $0.lowercased() == lower }) { return exact }
        let scored = candidates.map { ($0, distance(lower, $0.lowercased())) }.filter { $0.1 <= max(2, name.count / 4) }
        if let best = scored.min(by: { $0.1 < $1.1 }) { return best.0 }
        if allowContainment, lower.count >= 4,
            let containing = candidates.first(where: { $0.lowercased().contains(lower) || lower.contains($0.lowercased()) })
        {
            return containing
        }
        return nil
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// The CodeDeploy agent's ACL entry grammar: `[d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]:]name:perms`,
/// perms a digit 0-7 or letters from `rwx-`.
public enum ACLGrammar {
    public struct Problem: Error, Sendable, Equatable {
        public var message: String
    }

    public static func parse(_ text: String) -> Result<ACLEntry, Problem> {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func invalid(_ why: String) -> Result<ACLEntry, Problem> {
            .failure(Problem(message: "invalid ACL entry '\(text)': \(why); expected [d:][u|g|m|o:]name:perms such as u:bob:rw or d:g:ops:r-x"))
        }
        guard (2...4).contains(fields.count) else { return invalid("it has \(fields.count) fields") }
        var rest = fields[...]
        var isDefault = false
        if rest.count >= 3, ["d", "default"].contains(rest.first ?? "") {
            isDefault = true
            rest = rest.dropFirst()
        }
        guard rest.count == 2 || rest.count == 3 else { return invalid("too many fields") }
        var kind: ACLEntry.Kind = .user
        if rest.count == 3 {
            switch rest.first ?? "" {
            case "u", "user": kind = .user
            case "g", "group": kind = .group
            case "m", "mask": kind = .mask
            case "o", "other": kind = .other
            default: return invalid("'\(rest.first ?? "")' is not a type (u, g, m, o)")
            }
            rest = rest.dropFirst()
        }
        var name = rest.first ?? ""
        let perms = rest.last ?? ""
        if rest.count == 2, fields.count == 2 || (isDefault && fields.count == 3) {
            if name == "m" || name == "mask" {
                kind = .mask
                name = ""
            } else if name == "o" || name == "other" {
                kind = .other
                name = ""
            }
        }
        if (kind == .mask || kind == .other), !name.isEmpty { return invalid("\(kind.rawValue) entries take no name") }
        if name.isEmpty, kind != .mask, !isDefault {
            return .failure(Problem(message: "ACL entry '\(text)' sets a base entry; use mode for the owner, group and other bits"))
        }
        var r = false
        var w = false
        var x = false
        if perms.count == 1, let digit = Int(perms), (0...7).contains(digit) {
            r = digit & 4 != 0
            w = digit & 2 != 0
            x = digit & 1 != 0
        } else {
            guard !perms.isEmpty else { return invalid("the permissions are empty") }
            for c in perms {
                switch c {
                case "r": r = true
                case "w": w = true
                case "x": x = true
                case "-": break
                default:
                    return .failure(
                        Problem(message: "ACL entry '\(text)' has an invalid permission character '\(c)'; use r, w, x, - or one digit 0-7"))
                }
            }
        }
        return .success(ACLEntry(isDefault: isDefault, kind: kind, name: name, read: r, write: w, execute: x))
    }
}

/// SELinux MLS ranges: `s<N>[-s<M>][:c<a>[.c<b>](,c…)*]`, sensitivities ascending, categories 0-1023, no duplicates.
public enum SELinuxRange {
    public static func problem(in range: String) -> String? {
        let parts = range.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let levels = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(levels.count) else { return "invalid range '\(range)': expected s<low>[-s<high>][:categories]" }
        var sensitivities: [Int] = []
        for level in levels {
            guard level.hasPrefix("s"), let n = Int(level.dropFirst()), n >= 0 else {
                return "invalid sensitivity '\(level)' in range '\(range)': expected s followed by a number, such as s0"
            }
            sensitivities.append(n)
        }
        if sensitivities.count == 2, sensitivities[1] < sensitivities[0] {
            return "invalid range '\(range)': the high sensitivity is below the low one"
        }
        guard parts.count == 2 else { return nil }
        var seen = Set<Int>()
        for item in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: ".", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count) else { return "invalid category '\(item)' in range '\(range)'" }
            var numbers: [Int] = []
            for bound in bounds {
                guard bound.hasPrefix("c"), let n = Int(bound.dropFirst()), (0...1023).contains(n) else {
                    return "invalid category '\(bound)' in range '\(range)': expected c0 to c1023"
                }
                numbers.append(n)
            }
            let low = numbers[0]
            let high = numbers.last ?? low
            guard high >= low else { return "invalid category range '\(item)' in range '\(range)': the end is below the start" }
            for n in low...high {
                guard seen.insert(n).inserted else { return "duplicate category c\(n) in range '\(range)'" }
            }
        }
        return nil
    }
}
