import Testing

@testable import Agent

/// `joinedPath()` stands in for `joined(separator: "/")` on the hook and confinement paths.
@Suite struct JoinedPathTests {
    @Test(arguments: [[], [""], ["a"], ["a", "b"], ["", "a"], ["a", ""], ["a", "", "b"], ["é", "dir with space", "..."]])
    func joinsAsTheStandardLibraryDoes(_ parts: [String]) {
        #expect(parts.joinedPath() == parts.joined(separator: "/"))
    }
}
