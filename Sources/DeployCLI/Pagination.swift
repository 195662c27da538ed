import ArgumentParser
import DeployModel
import Foundation

/// How an operation pages (botocore's paginator model): the request and response token members and the list that
/// accumulates.
struct Paginator: Sendable {
    var inputToken: String
    var outputToken: String
    var resultKey: String
}

/// `--max-items` and `--starting-token`, on the operations botocore paginates, as the aws CLI has them. (`--page-size`
/// is not offered: CodeDeploy's list operations take no page size, and the aws CLI does not offer it for them either.)
struct PaginationOptions: ParsableArguments {
    @Option(
        name: .customLong("max-items"),
        help: ArgumentHelp(
            "The total number of items to print. If more are available, the output gains a NextToken; pass it to --starting-token to go on.",
            valueName: "integer"))
    var maxItems: Int?

    @Option(
        name: .customLong("starting-token"),
        help: ArgumentHelp("Where to start: the NextToken of an earlier output truncated by --max-items.", valueName: "string"))
    var startingToken: String?

    func validate() throws {
        if let maxItems, maxItems < 0 { throw ValidationError("--max-items must be 0 or more, got \(maxItems)") }
    }
}

/// botocore's resume tokens, so a NextToken from deployctl works with the aws CLI and the other way round: base64
/// of `{"nextToken": <service token or null>, "boto_truncate_amount": <items already printed from that page>}`.
enum ResumeToken {
    static func encode(serviceToken: String?, inputToken: String, truncate: Int?) -> String {
        var json = "{" + Self.quoted(inputToken) + ": " + (serviceToken.map(Self.quoted) ?? "null")
        if let truncate { json += ", \"boto_truncate_amount\": \(truncate)" }
        json += "}"
        return Data(json.utf8).base64EncodedString()
    }

    /// Python's `json.dumps` of a string (ASCII, `\uXXXX` escapes), as botocore writes tokens.
    static func quoted(_ s: String) -> String {
        var out = ""
        JSONValue.writeString(s, into: &out, asciiOnly: true)
        return out
    }

    /// The service token to resume from and how many items of its page to skip.
    static func decode(_ token: String, inputToken: String) throws -> (serviceToken: String?, skip: Int) {
        if let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8),
            case .object = (try? JSONValue.parse(text)) ?? .null, let value = try? JSONValue.parse(text)
        {
            let skip: Int
            switch value["boto_truncate_amount"] {
            case .int(let n)?: skip = n
            case nil, .null?: skip = 0
            default: throw CLIFailure.usage("Bad value for --starting-token: boto_truncate_amount is not a number")
            }
            guard skip >= 0 else { throw CLIFailure.usage("Bad value for --starting-token: a negative truncation") }
            return (value[inputToken]?.stringValue, skip)
        }
        // botocore's older form: "<token>___<index>", or an opaque service token.
        let parts = token.components(separatedBy: "___")
        if parts.count == 2, let index = Int(parts[1]), index >= 0 { return (parts[0] == "None" ? nil : parts[0], index) }
        return (token, 0)
    }
}
