/// A JSON object read in place, for the verify hot path. The whole text is checked exactly as
/// `JSONValue.parse` checks it, in one pass that builds nothing: it only locates the members
/// of the object and of every object nested in it (not those inside arrays), and a value is
/// made when it is asked for. It points into the caller's bytes, so it lives only inside the
/// `withUnsafe…` call that made it.
package struct JSONObjectView {
    /// Offsets are kept as Int32 (texts over 2 GiB are refused) so that a member is 24 bytes.
    package struct Member {
        private var parentIndex, keyStart, keyEnd, valueStart, valueEnd: Int32
        /// Whether the key has an escape (then it is compared decoded).
        var keyEscaped: Bool
        /// Whether the value is a string without escapes (its bytes are then its text).
        var plainString: Bool

        init(parent: Int, key: Range<Int>, keyEscaped: Bool) {
            parentIndex = Int32(parent)
            keyStart = Int32(key.lowerBound)
            keyEnd = Int32(key.upperBound)
            valueStart = 0
            valueEnd = 0
            self.keyEscaped = keyEscaped
            plainString = false
        }

        /// The member whose value is the object holding this one; -1 for the top level.
        var parent: Int { Int(parentIndex) }
        /// The key's text between its quotes.
        var key: Range<Int> { Int(keyStart)..<Int(keyEnd) }
        /// The value's exact text.
        var value: Range<Int> {
            get { Int(valueStart)..<Int(valueEnd) }
            set { valueStart = Int32(newValue.lowerBound); valueEnd = Int32(newValue.upperBound) }
        }
    }

    package let buffer: UnsafeBufferPointer<UInt8>
    /// Every located member of the document, in document order.
    fileprivate let members: [Member]
    /// The member whose value is this object; -1 for the document itself.
    fileprivate let index: Int

    /// nil when the bytes are not JSON, or JSON that is not an object.
    package init?(_ buffer: UnsafeBufferPointer<UInt8>) {
        guard buffer.count < Int(Int32.max) else { return nil }
        var reader = JSONValue.Reader(buffer: buffer)
        var members: [Member] = []
        members.reserveCapacity(24)
        reader.skipWhitespace()
        guard reader.peek() == UInt8(ascii: "{"), (try? reader.objectMembers(depth: 0, parent: -1, into: &members)) != nil else { return nil }
        reader.skipWhitespace()
        guard reader.position == buffer.count else { return nil }
        self.init(buffer: buffer, members: members, index: -1)
    }

    package init?(_ buffer: UnsafeRawBufferPointer) {
        self.init(buffer.assumingMemoryBound(to: UInt8.self))
    }

    fileprivate init(buffer: UnsafeBufferPointer<UInt8>, members: [Member], index: Int) {
        self.buffer = buffer
        self.members = members
        self.index = index
    }

    /// The first member named `key`.
    package subscript(key: String) -> JSONSpan? {
        var key = key
        let found: Int? = key.withUTF8 { wanted in
            members.withUnsafeBufferPointer { members in
                let end = index < 0 ? buffer.count : members[index].value.upperBound
                // An object's members follow the member holding it, up to where it ends.
                var i = index + 1
                while i < members.count, members[i].value.lowerBound < end {
                    defer { i += 1 }
                    guard members[i].parent == index else { continue }
                    let name = members[i].key
                    if members[i].keyEscaped {
                        var reader = JSONValue.Reader(buffer: buffer)
                        reader.position = name.lowerBound - 1
                        if let decoded = try? reader.string(), decoded.utf8.elementsEqual(wanted) { return i }
                    } else if name.count == wanted.count, Bytes.equal(UnsafeBufferPointer(rebasing: buffer[name]), wanted) {
                        return i
                    }
                }
                return nil
            }
        }
        return found.map { JSONSpan(document: self, member: $0) }
    }
}

/// One member's value inside a checked JSON text; read on demand.
package struct JSONSpan {
    fileprivate let document: JSONObjectView
    fileprivate let member: Int

    private var buffer: UnsafeBufferPointer<UInt8> { document.buffer }
    /// The value's exact text.
    package var range: Range<Int> { document.members[member].value }
    private var plainString: Bool { document.members[member].plainString }
    private var first: UInt8 { buffer[range.lowerBound] }

    package var object: JSONObjectView? {
        first == UInt8(ascii: "{") ? JSONObjectView(buffer: buffer, members: document.members, index: member) : nil
    }

    package var isString: Bool { first == UInt8(ascii: "\"") }

    package var string: String? {
        guard isString else { return nil }
        if plainString { return String(decoding: UnsafeBufferPointer(rebasing: buffer[range.dropFirst().dropLast()]), as: UTF8.self) }
        var reader = JSONValue.Reader(buffer: buffer)
        reader.position = range.lowerBound
        return try? reader.string()
    }

    /// Calls `body` with a string value's bytes: in place when it has no escape, decoded
    /// otherwise. nil when the value is not a string.
    package func withStringBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard isString else { return nil }
        if plainString { return body(UnsafeBufferPointer(rebasing: buffer[range.dropFirst().dropLast()])) }
        guard var decoded = string else { return nil }
        return decoded.withUTF8(body)
    }

    /// Whether this is a string equal to `text` (compared as bytes, nothing made).
    package func isString(_ text: StaticString) -> Bool {
        withStringBytes { Bytes.equal($0, UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)) } ?? false
    }

    package func isString(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { wanted in withStringBytes { Bytes.equal($0, wanted) } } ?? false
    }

    /// An integer number without fraction or exponent, within Int64.
    package var int64: Int64? {
        var digits = UnsafeBufferPointer(rebasing: buffer[range])
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = UnsafeBufferPointer(rebasing: digits.dropFirst()) }
        guard !digits.isEmpty else { return nil }
        // Accumulated negatively, so that Int64.min fits.
        var value: Int64 = 0
        for digit in digits {
            guard digit >= 0x30, digit <= 0x39 else { return nil }  // a fraction, an exponent, not a number
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.subtractingReportingOverflow(Int64(digit - 0x30))
            guard !o1, !o2 else { return nil }
            value = next
        }
        if negative { return value }
        return value == .min ? nil : -value
    }
}

extension JSONValue.Reader {
    /// An object at `position`, checked and located member by member (nested objects too),
    /// nothing built.
    package mutating func objectMembers(depth: Int, parent: Int, into members: inout [JSONObjectView.Member]) throws(JSONValue.ParseError) {
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
            members.append(.init(parent: parent, key: key, keyEscaped: keyEscaped))
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
