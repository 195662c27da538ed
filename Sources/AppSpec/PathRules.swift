/// Path checks shared by appspec sources, script locations and bundle entries.
public enum PathRules {
    /// A reason when `path` (relative to the bundle root; a leading `/` is still relative) would leave the bundle.
    public static func escapesBundle(_ path: String) -> String? {
        var depth = 0
        for part in path.split(separator: "/") {
            if part == ".." {
                depth -= 1
                if depth < 0 { return "'\(path)' leaves the bundle through '..'; paths are relative to the bundle root" }
            } else if part != "." {
                depth += 1
            }
        }
        return path.contains("\0") ? "'\(path)' contains a NUL character" : nil
    }
}
