import ArgumentParser

/// The values of deployctl's enum options (listed in help, completions and errors) as ArgumentParser's default lists
/// them for a String-backed enum, its raw values, without the key path that default maps through
/// (`\.rawValue.defaultValueDescription`): instantiating it for each enum had the runtime look up its generic
/// arguments' conformances, 5% of a trivial `deployctl local` (issue 12).
extension ExpressibleByArgument where Self: CaseIterable, Self: RawRepresentable, RawValue == String {
    public static var allValueStrings: [String] { allCases.map { $0.rawValue } }
}
