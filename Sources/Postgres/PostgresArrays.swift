/// One-dimensional arrays read from binary-format cells: `text[]` and `bytea[]`. (Array
/// cannot conform to `PostgresDecodable` a second time, beside `bytea` as `[UInt8]`.)
extension PostgresRow {
    /// A `text[]` column; NULL or a NULL element is an error naming the column.
    public func textArray(_ column: Int) throws(PostgresError) -> [String] {
        // The server checks text against its encoding (UTF-8 for Payhook's databases).
        try self[column].arrayElements(of: PostgresType.text, "text[]").map { String(decoding: $0, as: UTF8.self) }
    }

    /// A `bytea[]` column; NULL or a NULL element is an error naming the column.
    public func byteaArray(_ column: Int) throws(PostgresError) -> [[UInt8]] {
        try self[column].arrayElements(of: PostgresType.bytea, "bytea[]").map { Array($0) }
    }
}

extension PostgresCell {
    /// The elements of a one-dimensional binary array: `ndim`, `has null`, element OID, then
    /// per dimension its length and lower bound, then each element's length and bytes.
    func arrayElements(of elementOID: UInt32, _ wanted: String) throws(PostgresError) -> [ArraySlice<UInt8>] {
        let bytes = try nonNull()
        guard bytes.count >= 12 else { throw mismatch(wanted) }
        let start = bytes.startIndex
        let dimensions = integer(bytes[start..<start + 4], as: Int32.self)
        let element = integer(bytes[start + 8..<start + 12], as: UInt32.self)
        guard element == elementOID else { throw mismatch(wanted) }
        if dimensions == 0 { return [] }
        guard dimensions == 1, bytes.count >= 20 else { throw mismatch("a one-dimensional \(wanted)") }
        let count = Int(integer(bytes[start + 12..<start + 16], as: Int32.self))
        var elements: [ArraySlice<UInt8>] = []
        elements.reserveCapacity(count)
        var offset = start + 20
        for _ in 0..<count {
            guard offset + 4 <= bytes.endIndex else { throw mismatch(wanted) }
            let length = Int(integer(bytes[offset..<offset + 4], as: Int32.self))
            offset += 4
            guard length >= 0 else {
                throw PostgresError(code: .decoding, context: "column \(columnName) holds a NULL element")
            }
            guard offset + length <= bytes.endIndex else { throw mismatch(wanted) }
            elements.append(bytes[offset..<offset + length])
            offset += length
        }
        return elements
    }
}
