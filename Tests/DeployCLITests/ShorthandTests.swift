import DeployModel
import Testing

@testable import DeployCLI

@Suite struct ShorthandTests {
    func parse(_ text: String) throws -> JSONValue { try ShorthandParser.parseStructure(text) }

    @Test func flatMembers() throws {
        #expect(
            try parse("Key=env,Value=prod,Type=KEY_AND_VALUE")
                == .members([("Key", .string("env")), ("Value", .string("prod")), ("Type", .string("KEY_AND_VALUE"))]))
    }

    @Test func nestedListsAndStructures() throws {
        let value = try parse("onPremisesTagSetList=[[{Key=a,Value=b,Type=KEY_AND_VALUE}],[{Key=c,Type=KEY_ONLY}]]")
        #expect(
            value.compact()
                == #"{"onPremisesTagSetList":[[{"Key":"a","Value":"b","Type":"KEY_AND_VALUE"}],[{"Key":"c","Type":"KEY_ONLY"}]]}"#)
    }

    @Test func implicitListsContinueUntilTheNextKey() throws {
        #expect(
            try parse("enabled=true,events=DEPLOYMENT_FAILURE,DEPLOYMENT_STOP_ON_REQUEST").compact()
                == #"{"enabled":"true","events":["DEPLOYMENT_FAILURE","DEPLOYMENT_STOP_ON_REQUEST"]}"#)
        #expect(try parse("events=A,B,enabled=false").compact() == #"{"events":["A","B"],"enabled":"false"}"#)
    }

    @Test func quotedValuesKeepCommasAndEquals() throws {
        #expect(try parse("Key=note,Value='a,b=c'").compact() == #"{"Key":"note","Value":"a,b=c"}"#)
        #expect(try parse(#"Value="x y""#).compact() == #"{"Value":"x y"}"#)
        #expect(try parse(#"Value=a\,b"#).compact() == #"{"Value":"a,b"}"#)
    }

    @Test(arguments: ["novalue", "=x", "a=[1,2", "a={b=c", "a='open", "a=b,,c=d", "a=b,"])
    func malformedShorthandIsAnError(_ text: String) {
        #expect(throws: ShorthandSyntaxError.self) { try ShorthandParser.parseStructure(text) }
    }

    @Test func flagNamesFollowTheAwsCli() {
        #expect(CreateDeploymentGroupCommand.flagName("ec2TagFilters") == "ec2-tag-filters")
        #expect(CreateDeploymentGroupCommand.flagName("ResourceArn") == "resource-arn")
        #expect(CreateDeploymentGroupCommand.flagName("onPremisesInstanceTagFilters") == "on-premises-instance-tag-filters")
    }
}

@Suite struct TextFormatTests {
    @Test func scalarsSortedByKeyUnderTheUppercasedParent() {
        let value = JSONValue.members([
            ("application", .members([("applicationName", .string("demo")), ("applicationId", .string("id")), ("linkedToGitHub", .bool(false))]))
        ])
        #expect(OutputFormatter.format(value, as: .text, operation: "GetApplication") == "APPLICATION\tid\tdemo\tFalse\n")
    }

    @Test func listsOfScalarsPrintOneLineEach() {
        let value = JSONValue.members([("applications", .array([.string("a"), .string("b")]))])
        #expect(OutputFormatter.format(value, as: .text, operation: "ListApplications") == "APPLICATIONS\ta\nAPPLICATIONS\tb\n")
    }

    @Test func emptyResponsesPrintNothing() {
        #expect(OutputFormatter.format(.object([]), as: .json, operation: "DeleteApplication") == "")
    }

    @Test func tablesHaveATitleAndSortedRows() {
        let value = JSONValue.members([("application", .members([("b", .string("2")), ("a", .string("1"))]))])
        let table = OutputFormatter.format(value, as: .table, operation: "GetApplication")
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines[1].contains("GetApplication"))
        #expect(lines.contains { $0.contains("application") })
        let aRow = lines.firstIndex { $0.contains("  a ") } ?? -1
        let bRow = lines.firstIndex { $0.contains("  b ") } ?? -1
        #expect(aRow >= 0 && aRow < bRow)
        #expect(Set(lines.map(\.count)).count == 1)
    }
}
