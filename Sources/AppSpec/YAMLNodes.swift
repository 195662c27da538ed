import Yams

/// How deployctl composes its own YAML files (the appspec, the agent configuration) into nodes, which it reads by
/// their text and style, never turning them into Swift values by tag:
/// - Yams' basic resolver: its default one compiles seven ICU regular expressions (1 ms and 2 MiB at every start);
/// - a constructor without Yams' default tag maps, whose dictionaries of closures took 0.2 ms to build;
/// - UTF-8 stated: Yams' default encoding reads the whole environment for `YAMS_DEFAULT_ENCODING` at every parse.
public enum YAMLNodes {
    public static func compose(_ text: String) throws -> Node? {
        try Yams.compose(yaml: text, .basic, Constructor([:], [:], [:]), .utf8)
    }
}
