/// One HTTP header as it arrived: name and value verbatim, in arrival order (repeats kept).
public struct HeaderField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
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
