/// One HTTP header as it arrived: name and value verbatim, in arrival order (repeats kept).
public struct HeaderField: Sendable, Hashable {
    public var name: String
    /// The value as text. Bytes that are not UTF-8 read as U+FFFD here; `bytes` keeps them.
    public var value: String {
        didSet { nonUTF8Bytes = nil }
    }
    /// The value's bytes, only when they are not valid UTF-8 (else `value.utf8` is verbatim).
    public private(set) var nonUTF8Bytes: [UInt8]?

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// A value received as bytes: kept as they are, whether or not they are UTF-8.
    public init(name: String, bytes: [UInt8]) {
        self.name = name
        // Validating once, not decoding then comparing byte by byte: every claimed callback
        // reads its headers this way (3% of `payhook work`'s CPU in the drain's profile).
        if let text = String(validating: bytes, as: UTF8.self) {
            self.value = text
        } else {
            self.value = String(decoding: bytes, as: UTF8.self)
            nonUTF8Bytes = bytes
        }
    }

    public init(name: String, bytes: some Collection<UInt8>) {
        self.init(name: name, bytes: Array(bytes))
    }

    /// The value's bytes exactly as they arrived.
    public var bytes: [UInt8] { nonUTF8Bytes ?? Array(value.utf8) }
}

extension Array where Element == HeaderField {
    /// The first header with this name, compared case-insensitively (ASCII).
    public func first(named name: String) -> String? {
        for field in self where HeaderField.namesEqual(field.name, name) {
            return field.value
        }
        return nil
    }
}

extension HeaderField {
    /// Header names compared as HTTP does: ASCII letters case-insensitively.
    @inline(__always)
    public static func namesEqual(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        if a == b { return true }  // names usually arrive in their documented case
        var a = a
        var b = b
        return a.withUTF8 { ua in
            b.withUTF8 { ub in
                guard ua.count == ub.count else { return false }
                for i in 0..<ua.count {
                    var x = ua[i]
                    var y = ub[i]
                    if x >= 0x41 && x <= 0x5A { x |= 0x20 }
                    if y >= 0x41 && y <= 0x5A { y |= 0x20 }
                    if x != y { return false }
                }
                return true
            }
        }
    }
}
