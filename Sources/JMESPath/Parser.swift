import DeployModel

/// The syntax tree, node for node what jmespath.py's parser builds.
indirect enum Node: Sendable {
    case identity
    case current
    case field(String)
    case literal(JSONValue)
    case subexpression([Node])
    case indexExpression([Node])
    case index(Int)
    case slice(start: Int?, stop: Int?, step: Int?)
    case projection(Node, Node)
    case valueProjection(Node, Node)
    case filterProjection(Node, Node, condition: Node)
    case flatten(Node)
    case comparator(Token.Kind, Node, Node)
    case or(Node, Node)
    case and(Node, Node)
    case not(Node)
    case pipe(Node, Node)
    case multiSelectList([Node])
    case multiSelectHash([(String, Node)])
    case function(String, [Node])
    case expref(Node)

    var isSubexpression: Bool {
        if case .subexpression = self { return true }
        return false
    }
}

/// A top-down operator precedence (Pratt) parser with jmespath.py's binding powers.
struct Parser {
    let tokens: [Token]
    var index = 0

    static let projectionStop = 10

    static func bindingPower(_ kind: Token.Kind) -> Int {
        switch kind {
        case .pipe: return 1
        case .or: return 2
        case .and: return 3
        case .eq, .gt, .lt, .gte, .lte, .ne: return 5
        case .flatten: return 9
        case .star: return 20
        case .filter: return 21
        case .dot: return 40
        case .not: return 45
        case .lbrace: return 50
        case .lbracket: return 55
        case .lparen: return 60
        default: return 0
        }
    }

    var current: Token.Kind { lookahead(0) }
    func lookahead(_ n: Int) -> Token.Kind { index + n < tokens.count ? tokens[index + n].kind : .eof }
    func token(_ n: Int = 0) -> Token { index + n < tokens.count ? tokens[index + n] : tokens[tokens.count - 1] }
    mutating func advance() { index += 1 }

    func error(_ message: String, _ token: Token) -> JMESPathError {
        if token.kind == .eof {
            return JMESPathError(kind: .syntax, message: "Incomplete expression: \(message)", position: token.start)
        }
        return JMESPathError(kind: .syntax, message: "\(message), unexpected \(token.kind.rawValue) '\(token.text)'", position: token.start)
    }

    mutating func match(_ kind: Token.Kind) throws(JMESPathError) {
        guard current == kind else { throw error("expected \(kind.rawValue)", token()) }
        advance()
    }

    static func parse(_ text: String) throws(JMESPathError) -> Node {
        var lexer = Lexer(text)
        var parser = Parser(tokens: try lexer.tokenize())
        let node = try parser.expression(0)
        guard parser.current == .eof else { throw parser.error("Unexpected token", parser.token()) }
        return node
    }

    mutating func expression(_ bindingPower: Int) throws(JMESPathError) -> Node {
        let left = token()
        advance()
        var node = try nud(left)
        while bindingPower < Self.bindingPower(current) {
            let kind = current
            advance()
            node = try led(kind, node)
        }
        return node
    }

    mutating func nud(_ token: Token) throws(JMESPathError) -> Node {
        switch token.kind {
        case .literal: return .literal(token.literal)
        case .unquotedIdentifier: return .field(token.text)
        case .quotedIdentifier:
            if current == .lparen { throw error("Quoted identifier not allowed for function names", self.token()) }
            return .field(token.text)
        case .star:
            if current == .rbracket { return .valueProjection(.identity, .identity) }
            return .valueProjection(.identity, try projectionRHS(Self.bindingPower(.star)))
        case .filter: return try ledFilter(.identity)
        case .lbrace: return try multiSelectHash()
        case .lparen:
            let inner = try expression(0)
            try match(.rparen)
            return inner
        case .flatten: return .projection(.flatten(.identity), try projectionRHS(Self.bindingPower(.flatten)))
        case .not: return .not(try expression(Self.bindingPower(.not)))
        case .lbracket:
            if current == .number || current == .colon {
                return try projectIfSlice(.identity, try indexExpression())
            }
            if current == .star, lookahead(1) == .rbracket {
                advance()
                advance()
                return .projection(.identity, try projectionRHS(Self.bindingPower(.star)))
            }
            return try multiSelectList()
        case .current: return .current
        case .expref: return .expref(try expression(Self.bindingPower(.expref)))
        case .eof: throw error("expected an expression", token)
        default: throw error("Invalid token", token)
        }
    }

    mutating func led(_ kind: Token.Kind, _ left: Node) throws(JMESPathError) -> Node {
        switch kind {
        case .dot:
            if current != .star {
                let right = try dotRHS(Self.bindingPower(.dot))
                if case .subexpression(let children) = left { return .subexpression(children + [right]) }
                return .subexpression([left, right])
            }
            advance()
            return .valueProjection(left, try projectionRHS(Self.bindingPower(.dot)))
        case .pipe: return .pipe(left, try expression(Self.bindingPower(.pipe)))
        case .or: return .or(left, try expression(Self.bindingPower(.or)))
        case .and: return .and(left, try expression(Self.bindingPower(.and)))
        case .lparen:
            guard case .field(let name) = left else { throw error("Invalid function name", token(-1)) }
            var arguments: [Node] = []
            while current != .rparen {
                let argument = try expression(0)
                if current == .comma { try match(.comma) }
                arguments.append(argument)
            }
            try match(.rparen)
            return .function(name, arguments)
        case .filter: return try ledFilter(left)
        case .eq, .ne, .gt, .gte, .lt, .lte: return .comparator(kind, left, try expression(Self.bindingPower(kind)))
        case .flatten: return .projection(.flatten(left), try projectionRHS(Self.bindingPower(.flatten)))
        case .lbracket:
            if current == .number || current == .colon {
                let right = try indexExpression()
                if case .indexExpression(let children) = left { return .indexExpression(children + [right]) }
                return try projectIfSlice(left, right)
            }
            try match(.star)
            try match(.rbracket)
            return .projection(left, try projectionRHS(Self.bindingPower(.star)))
        default: throw error("Invalid token", token(-1))
        }
    }

    mutating func ledFilter(_ left: Node) throws(JMESPathError) -> Node {
        let condition = try expression(0)
        try match(.rbracket)
        let right: Node = current == .flatten ? .identity : try projectionRHS(Self.bindingPower(.filter))
        return .filterProjection(left, right, condition: condition)
    }

    mutating func projectIfSlice(_ left: Node, _ right: Node) throws(JMESPathError) -> Node {
        let indexed = Node.indexExpression([left, right])
        if case .slice = right { return .projection(indexed, try projectionRHS(Self.bindingPower(.star))) }
        return indexed
    }

    mutating func indexExpression() throws(JMESPathError) -> Node {
        if lookahead(0) == .colon || lookahead(1) == .colon { return try sliceExpression() }
        let value = token().number
        advance()
        try match(.rbracket)
        return .index(value)
    }

    mutating func sliceExpression() throws(JMESPathError) -> Node {
        var parts: [Int?] = [nil, nil, nil]
        var part = 0
        while current != .rbracket, part < 3 {
            if current == .colon {
                part += 1
                if part == 3 { throw error("syntax error", token()) }
                advance()
            } else if current == .number {
                parts[part] = token().number
                advance()
            } else {
                throw error("syntax error", token())
            }
        }
        try match(.rbracket)
        return .slice(start: parts[0], stop: parts[1], step: parts[2])
    }

    mutating func multiSelectList() throws(JMESPathError) -> Node {
        var items: [Node] = []
        while true {
            items.append(try expression(0))
            if current == .rbracket { break }
            try match(.comma)
        }
        try match(.rbracket)
        return .multiSelectList(items)
    }

    mutating func multiSelectHash() throws(JMESPathError) -> Node {
        var pairs: [(String, Node)] = []
        while true {
            let key = token()
            guard key.kind == .quotedIdentifier || key.kind == .unquotedIdentifier else {
                throw error("expected a key name", key)
            }
            advance()
            try match(.colon)
            pairs.append((key.text, try expression(0)))
            if current == .comma {
                try match(.comma)
            } else if current == .rbrace {
                try match(.rbrace)
                break
            }
        }
        return .multiSelectHash(pairs)
    }

    mutating func projectionRHS(_ bindingPower: Int) throws(JMESPathError) -> Node {
        if Self.bindingPower(current) < Self.projectionStop { return .identity }
        switch current {
        case .lbracket, .filter: return try expression(bindingPower)
        case .dot:
            try match(.dot)
            return try dotRHS(bindingPower)
        default: throw error("syntax error", token())
        }
    }

    mutating func dotRHS(_ bindingPower: Int) throws(JMESPathError) -> Node {
        switch current {
        case .quotedIdentifier, .unquotedIdentifier, .star: return try expression(bindingPower)
        case .lbracket:
            try match(.lbracket)
            return try multiSelectList()
        case .lbrace:
            try match(.lbrace)
            return try multiSelectHash()
        default: throw error("Expecting an identifier, '[' or '{' after '.'", token())
        }
    }
}
