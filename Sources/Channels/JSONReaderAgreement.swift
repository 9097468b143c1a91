/// The in-place reader's consistency property, checked by the tests and the fuzz target.
extension JSONObjectView {
    /// Whether the in-place reader accepts exactly the objects `JSONValue.parse` accepts and
    /// reads the same strings, numbers and nested objects from them.
    package static func agreesWithParse(_ bytes: [UInt8]) -> Bool {
        let parsed = try? JSONValue.parse(bytes)
        return bytes.withUnsafeBufferPointer { buffer in
            guard let view = JSONObjectView(buffer) else {
                if case .object = parsed { return false }
                return true
            }
            guard let parsed else { return false }
            return view.agrees(with: parsed)
        }
    }

    private func agrees(with value: JSONValue) -> Bool {
        guard case .object(let members) = value else { return false }
        for member in members {
            guard let span = self[member.key], let first = value[member.key] else { return false }
            switch first {
            case .string(let text): guard span.string == text else { return false }
            case .object: guard let nested = span.object, nested.agrees(with: first) else { return false }
            case .number(let text): guard span.string == nil, span.object == nil, span.int64 == Int64(text) else { return false }
            default: guard span.string == nil, span.object == nil, span.int64 == nil else { return false }
            }
        }
        return true
    }
}
