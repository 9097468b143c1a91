/// A small, strict JSON reader over raw bytes (RFC 8259), made for the callback hot path:
/// one pass, no Foundation, numbers kept as their exact text (money never goes through
/// `Double`), nesting limited so hostile input cannot exhaust the stack. `JSONObjectView`
/// reads the same text in place, without building it.
package enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// The number's exact text as it appeared.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in document order (duplicates kept; lookups take the first).
    case object([Member])

    package struct Member: Sendable, Hashable {
        package var key: String
        package var value: JSONValue

        package init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    package struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        var offset: Int
        package var description: String { "invalid JSON at byte \(offset)" }
    }

    package static let maxDepth = 64

    package static func parse(_ bytes: [UInt8]) throws(ParseError) -> JSONValue {
        try parse(bytes[...])
    }

    package static func parse(_ bytes: ArraySlice<UInt8>) throws(ParseError) -> JSONValue {
        let result: Result<JSONValue, ParseError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(ParseError) -> JSONValue in try parse(buffer: buffer) }
        }
        return try result.get()
    }

    // The reader lives in a plain function, not in a closure: a captured `var` would be
    // boxed and every access checked for exclusivity at run time.
    private static func parse(buffer: UnsafeBufferPointer<UInt8>) throws(ParseError) -> JSONValue {
        var reader = Reader(buffer: buffer)
        reader.skipWhitespace()
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.position == buffer.count else { throw ParseError(offset: reader.position) }
        return value
    }

    package subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for member in members where member.key == key { return member.value }
        return nil
    }

    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// An integer number without fraction or exponent, within Int64.
    package var int64Value: Int64? {
        guard case .number(let text) = self else { return nil }
        return Int64(text)
    }

    package struct Reader {
        let buffer: UnsafeBufferPointer<UInt8>
        var position = 0

        init(buffer: UnsafeBufferPointer<UInt8>) { self.buffer = buffer }

        @inline(__always) func peek() -> UInt8? {
            position < buffer.count ? buffer[position] : nil
        }

        @inline(__always) mutating func skipWhitespace() {
            while position < buffer.count {
                switch buffer[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }

        mutating func expect(_ byte: UInt8) throws(ParseError) {
            guard position < buffer.count, buffer[position] == byte else { throw ParseError(offset: position) }
            position += 1
        }

        mutating func value(depth: Int) throws(ParseError) -> JSONValue {
            guard depth <= JSONValue.maxDepth, let byte = peek() else { throw ParseError(offset: position) }
            switch byte {
            case UInt8(ascii: "{"):
                return try object(depth: depth)
            case UInt8(ascii: "["):
                position += 1
                var items: [JSONValue] = []
                skipWhitespace()
                if peek() == UInt8(ascii: "]") { position += 1; return .array(items) }
                while true {
                    skipWhitespace()
                    items.append(try value(depth: depth + 1))
                    skipWhitespace()
                    if peek() == UInt8(ascii: ",") { position += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return .array(items)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try literal("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null")
                return .null
            default:
                return .number(try number())
            }
        }

        /// An object at `position`.
        mutating func object(depth: Int) throws(ParseError) -> JSONValue {
            position += 1  // the `{`
            var members: [Member] = []
            members.reserveCapacity(8)
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                let key = try string()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
                members.append(Member(key: key, value: try value(depth: depth + 1)))
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "}"))
                return .object(members)
            }
        }

        /// Reads a value as `value(depth:)` does, refusing the same inputs, without building it.
        mutating func skipValue(depth: Int) throws(ParseError) {
            guard depth <= JSONValue.maxDepth, let byte = peek() else { throw ParseError(offset: position) }
            switch byte {
            case UInt8(ascii: "{"):
                // The one object walk that checks without building; its member list is dropped.
                var ignored: [JSONObjectView.Member] = []
                try objectMembers(depth: depth, parent: -1, into: &ignored)
            case UInt8(ascii: "["):
                position += 1
                skipWhitespace()
                if peek() == UInt8(ascii: "]") { position += 1; return }
                while true {
                    skipWhitespace()
                    try skipValue(depth: depth + 1)
                    skipWhitespace()
                    if peek() == UInt8(ascii: ",") { position += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return
                }
            case UInt8(ascii: "\""): try skipString()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            default: _ = try number()
            }
        }

        /// Reads a string as `string()` does without making it. A string with an escape is
        /// handed to `string()` itself, so escapes are checked by one piece of code only.
        mutating func skipString() throws(ParseError) {
            let opening = position
            if try plainString() != nil { return }
            position = opening
            _ = try string()
        }

        /// The bytes of the string at `position` when it has no escape, checked (no control
        /// byte, valid UTF-8), and moves past it; nil when it has an escape, with `position`
        /// left at its first backslash.
        mutating func plainString() throws(ParseError) -> UnsafeBufferPointer<UInt8>? {
            try expect(UInt8(ascii: "\""))
            let start = position
            let ascii = skipPlainBytes()
            guard position < buffer.count else { throw ParseError(offset: position) }
            switch buffer[position] {
            case UInt8(ascii: "\""):
                let bytes = UnsafeBufferPointer(rebasing: buffer[start..<position])
                guard ascii || Bytes.isUTF8(bytes) else { throw ParseError(offset: start) }
                position += 1
                return bytes
            case UInt8(ascii: "\\"): return nil
            default: throw ParseError(offset: position)  // a control byte
            }
        }

        mutating func literal(_ word: StaticString) throws(ParseError) {
            let count = word.utf8CodeUnitCount
            guard buffer.count - position >= count else { throw ParseError(offset: position) }
            let base = word.utf8Start
            for i in 0..<count where buffer[position + i] != base[i] { throw ParseError(offset: position) }
            position += count
        }

        mutating func number() throws(ParseError) -> String {
            let start = position
            if peek() == UInt8(ascii: "-") { position += 1 }
            guard let first = peek(), isDigit(first) else { throw ParseError(offset: position) }
            position += 1
            if first != UInt8(ascii: "0") { while let b = peek(), isDigit(b) { position += 1 } }
            if peek() == UInt8(ascii: ".") {
                position += 1
                guard let b = peek(), isDigit(b) else { throw ParseError(offset: position) }
                while let b = peek(), isDigit(b) { position += 1 }
            }
            if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
                position += 1
                if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { position += 1 }
                guard let b = peek(), isDigit(b) else { throw ParseError(offset: position) }
                while let b = peek(), isDigit(b) { position += 1 }
            }
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<position]), as: UTF8.self)
        }

        @inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

        mutating func string() throws(ParseError) -> String {
            let start = position + 1
            // Checked UTF-8, so decoding repairs nothing.
            if let plain = try plainString() { return String(decoding: plain, as: UTF8.self) }
            // With escapes: the bytes before the first backslash, then the rest one by one.
            var bytes = Array(UnsafeBufferPointer(rebasing: buffer[start..<position]))
            while position < buffer.count {
                let b = buffer[position]
                if b == UInt8(ascii: "\"") {
                    position += 1
                    guard let text = Bytes.utf8String(bytes) else { throw ParseError(offset: start) }
                    return text
                }
                if b < 0x20 { throw ParseError(offset: position) }
                if b != UInt8(ascii: "\\") {
                    bytes.append(b)
                    position += 1
                    continue
                }
                position += 1
                guard let e = peek() else { throw ParseError(offset: position) }
                position += 1
                switch e {
                case UInt8(ascii: "\""): bytes.append(0x22)
                case UInt8(ascii: "\\"): bytes.append(0x5C)
                case UInt8(ascii: "/"): bytes.append(0x2F)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        guard buffer.count - position >= 6, buffer[position] == UInt8(ascii: "\\"),
                            buffer[position + 1] == UInt8(ascii: "u")
                        else { throw ParseError(offset: position) }
                        position += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw ParseError(offset: position) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw ParseError(offset: position)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw ParseError(offset: position) }
                    bytes.append(contentsOf: UTF8.encode(unicode)!)
                default:
                    throw ParseError(offset: position)
                }
            }
            throw ParseError(offset: position)
        }

        /// Moves to the first quote, backslash or control byte, 16 and 8 bytes at a time
        /// (byte by byte only in the last 7 bytes of the buffer); returns whether every byte
        /// passed was ASCII.
        @inline(__always) mutating func skipPlainBytes() -> Bool {
            guard let base = buffer.baseAddress else { return true }
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            // The high bit of each byte that is special. A false mark can only follow a true
            // one, so the lowest mark is exact.
            @inline(__always) func special(_ word: UInt64) -> UInt64 {
                let quote = word ^ (ones &* 0x22)
                let backslash = word ^ (ones &* 0x5C)
                return (((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)) & highs
            }
            @inline(__always) func load(_ offset: Int) -> UInt64 {
                UInt64(littleEndian: UnsafeRawPointer(base + offset).loadUnaligned(as: UInt64.self))
            }
            var high: UInt64 = 0
            while position + 16 <= buffer.count {
                let a = load(position), b = load(position + 8)
                if special(a) | special(b) != 0 { break }
                high |= a | b
                position += 16
            }
            while position + 8 <= buffer.count {
                let word = load(position)
                let marks = special(word)
                if marks != 0 {
                    let plain = marks.trailingZeroBitCount / 8  // bytes before the first special one
                    if plain > 0 { high |= word & (UInt64.max >> (64 - 8 * plain)) }
                    position += plain
                    return high & highs == 0
                }
                high |= word
                position += 8
            }
            while position < buffer.count {
                let b = buffer[position]
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 { break }
                high |= UInt64(b)
                position += 1
            }
            return high & highs == 0
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard buffer.count - position >= 4 else { throw ParseError(offset: position) }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let b = buffer[position]
                let digit: UInt32
                switch b {
                case 0x30...0x39: digit = UInt32(b - 0x30)
                case 0x41...0x46: digit = UInt32(b - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(b - 0x61 + 10)
                default: throw ParseError(offset: position)
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }
    }
}

extension JSONValue {
    /// Serializes compactly (used by the channel sides; the order of members is kept).
    package func serialized() -> String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, member) in members.enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(member.key, into: &out)
                out += ":"
                member.value.write(into: &out)
            }
            out += "}"
        }
    }

    package static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// Builds an object from key/value pairs in order.
    package static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(pairs.map { Member(key: $0.key, value: $0.value) })
    }
}
