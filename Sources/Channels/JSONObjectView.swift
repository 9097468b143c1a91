/// A JSON object read in place, for the verify hot path. The whole text is checked exactly as
/// `JSONValue.parse` checks it, in one pass that builds nothing: it only locates the members
/// of the object and of every object nested in it (not those inside arrays), and a value is
/// made when it is asked for. It points into the caller's bytes, so it lives only inside the
/// `withUnsafe…` call that made it.
struct JSONObjectView {
    struct Member {
        /// The member whose value is the object holding this one; -1 for the top level.
        var parent: Int
        /// The key's text between its quotes.
        var key: Range<Int>
        /// Whether the key has an escape (then it is compared decoded).
        var keyEscaped: Bool
        /// The value's exact text.
        var value: Range<Int>
        /// Whether the value is a string without escapes (its bytes are then its text).
        var plainString: Bool
    }

    let buffer: UnsafeBufferPointer<UInt8>
    /// Every located member of the document, in document order.
    fileprivate let members: [Member]
    /// The member whose value is this object; -1 for the document itself.
    fileprivate let index: Int

    /// nil when the bytes are not JSON, or JSON that is not an object.
    init?(_ buffer: UnsafeBufferPointer<UInt8>) {
        var reader = JSONValue.Reader(buffer: buffer)
        var members: [Member] = []
        members.reserveCapacity(32)
        reader.skipWhitespace()
        guard reader.peek() == UInt8(ascii: "{"), (try? reader.objectMembers(depth: 0, parent: -1, into: &members)) != nil else { return nil }
        reader.skipWhitespace()
        guard reader.position == buffer.count else { return nil }
        self.init(buffer: buffer, members: members, index: -1)
    }

    init?(_ buffer: UnsafeRawBufferPointer) {
        self.init(buffer.assumingMemoryBound(to: UInt8.self))
    }

    fileprivate init(buffer: UnsafeBufferPointer<UInt8>, members: [Member], index: Int) {
        self.buffer = buffer
        self.members = members
        self.index = index
    }

    /// The first member named `key`.
    subscript(key: String) -> JSONSpan? {
        var key = key
        return key.withUTF8 { wanted in
            // An object's members follow the member holding it.
            for i in (index + 1)..<members.count {
                let member = members[i]
                guard member.parent == index else {
                    if member.value.lowerBound >= end { break }
                    continue
                }
                if member.keyEscaped {
                    var reader = JSONValue.Reader(buffer: buffer)
                    reader.position = member.key.lowerBound - 1
                    guard let decoded = try? reader.string(), decoded.utf8.elementsEqual(wanted) else { continue }
                } else if member.key.count != wanted.count || !UnsafeBufferPointer(rebasing: buffer[member.key]).elementsEqual(wanted) {
                    continue
                }
                return JSONSpan(document: self, member: i)
            }
            return nil
        }
    }

    /// Where this object's text ends.
    private var end: Int { index < 0 ? buffer.count : members[index].value.upperBound }
}

/// One member's value inside a checked JSON text; read on demand.
struct JSONSpan {
    fileprivate let document: JSONObjectView
    fileprivate let member: Int

    private var buffer: UnsafeBufferPointer<UInt8> { document.buffer }
    /// The value's exact text.
    var range: Range<Int> { document.members[member].value }
    private var plainString: Bool { document.members[member].plainString }
    private var first: UInt8 { buffer[range.lowerBound] }

    var object: JSONObjectView? {
        first == UInt8(ascii: "{") ? JSONObjectView(buffer: buffer, members: document.members, index: member) : nil
    }

    var isString: Bool { first == UInt8(ascii: "\"") }

    var string: String? {
        guard isString else { return nil }
        if plainString { return String(decoding: UnsafeBufferPointer(rebasing: buffer[range.dropFirst().dropLast()]), as: UTF8.self) }
        var reader = JSONValue.Reader(buffer: buffer)
        reader.position = range.lowerBound
        return try? reader.string()
    }

    /// Calls `body` with a string value's bytes: in place when it has no escape, decoded
    /// otherwise. nil when the value is not a string.
    func withStringBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard isString else { return nil }
        if plainString { return body(UnsafeBufferPointer(rebasing: buffer[range.dropFirst().dropLast()])) }
        guard var decoded = string else { return nil }
        return decoded.withUTF8(body)
    }

    /// Whether this is a string equal to `text` (compared as bytes, nothing made).
    func isString(_ text: StaticString) -> Bool {
        withStringBytes { $0.elementsEqual(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)) } ?? false
    }

    /// An integer number without fraction or exponent, within Int64.
    var int64: Int64? {
        guard first == UInt8(ascii: "-") || (first >= 0x30 && first <= 0x39) else { return nil }
        return Int64(String(decoding: UnsafeBufferPointer(rebasing: buffer[range]), as: UTF8.self))
    }
}

extension JSONValue.Reader {
    /// An object at `position`, checked and located member by member (nested objects too),
    /// nothing built.
    mutating func objectMembers(depth: Int, parent: Int, into members: inout [JSONObjectView.Member]) throws(JSONValue.ParseError) {
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { position += 1; return }
        while true {
            skipWhitespace()
            let keyStart = position
            var keyEscaped = false
            if try plainString() == nil {
                keyEscaped = true
                position = keyStart
                _ = try string()
            }
            let key = keyStart + 1..<position - 1
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let slot = members.count
            members.append(.init(parent: parent, key: key, keyEscaped: keyEscaped, value: position..<position, plainString: false))
            let valueStart = position
            switch peek() {
            case UInt8(ascii: "\""):
                if try plainString() != nil {
                    members[slot].plainString = true
                } else {
                    position = valueStart
                    _ = try string()
                }
            case UInt8(ascii: "{"):
                guard depth + 1 <= JSONValue.maxDepth else { throw JSONValue.ParseError(offset: position) }
                try objectMembers(depth: depth + 1, parent: slot, into: &members)
            default:
                try skipValue(depth: depth + 1)
            }
            members[slot].value = valueStart..<position
            skipWhitespace()
            if peek() == UInt8(ascii: ",") { position += 1; continue }
            try expect(UInt8(ascii: "}"))
            return
        }
    }
}
