import Yams

extension Constructor {
    /// For documents read as nodes, never turned into Swift values by their tags (the appspec, the agent configuration):
    /// a constructor without Yams' default tag maps, whose dictionaries of closures took 0.2 ms to build at every start.
    /// Composed with it and an explicit `.utf8` (Yams' default encoding reads the whole environment for
    /// `YAMS_DEFAULT_ENCODING` at every parse).
    public static var nodesOnly: Constructor { Constructor([:], [:], [:]) }
}
