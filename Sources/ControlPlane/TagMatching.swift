import DeployModel

/// Which instances a deployment group's tag filters select (pure; no I/O).
///
/// A filter list is one tag group: an instance matches when **any** filter matches (OR). A tag set is a list of
/// groups: an instance must match **every** group (AND of ORs). `KEY_ONLY` matches the key with any value,
/// `VALUE_ONLY` any key with that value, `KEY_AND_VALUE` the exact pair.
public enum TagMatching {
    public static func matches(_ tags: [Tag], filter: TagFilter) -> Bool {
        let type = filter.type ?? (filter.key == nil ? .valueOnly : (filter.value == nil ? .keyOnly : .keyAndValue))
        switch type {
        case .keyOnly: return tags.contains { $0.key == filter.key }
        case .valueOnly: return tags.contains { ($0.value ?? "") == (filter.value ?? "") }
        case .keyAndValue: return tags.contains { $0.key == filter.key && ($0.value ?? "") == (filter.value ?? "") }
        }
    }

    public static func matches(_ tags: [Tag], anyOf filters: [TagFilter]) -> Bool {
        filters.contains { matches(tags, filter: $0) }
    }

    public static func matches(_ tags: [Tag], everyGroupOf tagSet: [[TagFilter]]) -> Bool {
        !tagSet.isEmpty && tagSet.allSatisfy { matches(tags, anyOf: $0) }
    }

    /// Checks that each filter carries what its type needs; returns a message for the first that does not.
    public static func problem(in filters: [TagFilter]) -> String? {
        for (index, filter) in filters.enumerated() {
            let key = filter.key ?? ""
            let value = filter.value ?? ""
            switch filter.type {
            case .keyOnly?:
                if key.isEmpty { return "tag filter \(index + 1) is KEY_ONLY but has no Key" }
            case .valueOnly?:
                if value.isEmpty { return "tag filter \(index + 1) is VALUE_ONLY but has no Value" }
            case .keyAndValue?:
                if key.isEmpty || value.isEmpty { return "tag filter \(index + 1) is KEY_AND_VALUE but lacks a Key or a Value" }
            case nil:
                if key.isEmpty && value.isEmpty { return "tag filter \(index + 1) has neither Key nor Value" }
            }
        }
        return nil
    }
}

extension TagFilter {
    /// An EC2-style filter (as `--target-instances` carries) read as an on-premises one.
    init(_ filter: EC2TagFilter) {
        self.init(key: filter.key, value: filter.value, type: filter.type.flatMap { TagFilterType(rawValue: $0.rawValue) })
    }
}
