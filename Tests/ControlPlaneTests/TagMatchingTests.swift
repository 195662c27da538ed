import ControlPlane
import DeployModel
import Testing

@Suite struct TagMatchingTests {
    let web = [Tag(key: "env", value: "prod"), Tag(key: "role", value: "web")]
    let db = [Tag(key: "env", value: "staging"), Tag(key: "role", value: "db")]
    let bare = [Tag(key: "owner", value: "")]

    @Test func keyOnlyMatchesAnyValueOfTheKey() {
        let filter = TagFilter(key: "env", type: .keyOnly)
        #expect(TagMatching.matches(web, filter: filter))
        #expect(TagMatching.matches(db, filter: filter))
        #expect(!TagMatching.matches(bare, filter: filter))
    }

    @Test func valueOnlyMatchesAnyKeyWithTheValue() {
        let filter = TagFilter(value: "web", type: .valueOnly)
        #expect(TagMatching.matches(web, filter: filter))
        #expect(!TagMatching.matches(db, filter: filter))
        #expect(!TagMatching.matches([Tag(key: "web", value: "x")], filter: filter))
    }

    @Test func keyAndValueNeedsTheExactPair() {
        let filter = TagFilter(key: "env", value: "prod", type: .keyAndValue)
        #expect(TagMatching.matches(web, filter: filter))
        #expect(!TagMatching.matches(db, filter: filter))
        #expect(!TagMatching.matches([Tag(key: "stage", value: "prod")], filter: filter))
    }

    @Test func aFilterListIsOr() {
        let filters = [TagFilter(key: "role", value: "web", type: .keyAndValue), TagFilter(key: "role", value: "db", type: .keyAndValue)]
        #expect(TagMatching.matches(web, anyOf: filters))
        #expect(TagMatching.matches(db, anyOf: filters))
        #expect(!TagMatching.matches(bare, anyOf: filters))
        #expect(!TagMatching.matches(web, anyOf: []))
    }

    @Test func aTagSetIsAndOfOrs() {
        let set: [[TagFilter]] = [
            [TagFilter(key: "env", value: "prod", type: .keyAndValue), TagFilter(key: "env", value: "staging", type: .keyAndValue)],
            [TagFilter(value: "web", type: .valueOnly)],
        ]
        #expect(TagMatching.matches(web, everyGroupOf: set))
        #expect(!TagMatching.matches(db, everyGroupOf: set))
        #expect(!TagMatching.matches(web, everyGroupOf: []))
    }

    @Test func filtersMissingWhatTheirTypeNeedsAreReported() {
        #expect(TagMatching.problem(in: [TagFilter(value: "x", type: .keyOnly)]) != nil)
        #expect(TagMatching.problem(in: [TagFilter(key: "x", type: .valueOnly)]) != nil)
        #expect(TagMatching.problem(in: [TagFilter(key: "x", type: .keyAndValue)]) != nil)
        #expect(TagMatching.problem(in: [TagFilter()]) != nil)
        #expect(TagMatching.problem(in: [TagFilter(key: "x", value: "y", type: .keyAndValue)]) == nil)
    }
}
