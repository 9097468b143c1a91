public import Foundation

/// The rows of one statement, copied out of libpq in binary format, so a result can
/// cross threads and outlive the `PGresult`.
public struct PostgresResult: Sendable {
    public struct Column: Sendable {
        public let name: String
        public let typeOID: UInt32
    }

    public let columns: [Column]
    /// Rows affected, from the command tag (INSERT/UPDATE/DELETE), or the row count.
    public let affectedRows: Int
    let storage: [UInt8]
    /// Row-major cell locations; a negative length is NULL.
    let cells: [(offset: Int32, length: Int32)]

    public var count: Int { columns.isEmpty ? 0 : cells.count / columns.count }
    public var isEmpty: Bool { count == 0 }

    public subscript(row: Int) -> PostgresRow { PostgresRow(result: self, index: row) }

    public var rows: [PostgresRow] { (0..<count).map { self[$0] } }

    /// The index of a named column.
    public func columnIndex(_ name: String) throws(PostgresError) -> Int {
        guard let index = columns.firstIndex(where: { $0.name == name }) else {
            throw PostgresError(code: .decoding, context: "no column \(name)")
        }
        return index
    }
}

public struct PostgresRow: Sendable {
    let result: PostgresResult
    let index: Int

    public subscript(column: Int) -> PostgresCell {
        let location = result.cells[index * result.columns.count + column]
        let info = result.columns[column]
        if location.length < 0 {
            return PostgresCell(columnName: info.name, typeOID: info.typeOID, bytes: nil)
        }
        let start = Int(location.offset)
        return PostgresCell(columnName: info.name, typeOID: info.typeOID,
                            bytes: result.storage[start..<start + Int(location.length)])
    }

    public func decode<T: PostgresDecodable>(_ column: Int, as type: T.Type = T.self) throws(PostgresError) -> T {
        try T.decode(self[column])
    }

    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws(PostgresError) -> T {
        try T.decode(self[try result.columnIndex(column)])
    }
}

/// One value of a row, still in PostgreSQL's binary format.
public struct PostgresCell: Sendable {
    public let columnName: String
    public let typeOID: UInt32
    /// nil is SQL NULL.
    public let bytes: ArraySlice<UInt8>?

    public var isNull: Bool { bytes == nil }

    func mismatch(_ wanted: String) -> PostgresError {
        PostgresError(code: .decoding, context: "column \(columnName) of type \(typeOID) is not \(wanted)")
    }

    func nonNull() throws(PostgresError) -> ArraySlice<UInt8> {
        guard let bytes else {
            throw PostgresError(code: .decoding, context: "column \(columnName) is NULL")
        }
        return bytes
    }

    func integer<T: FixedWidthInteger>(_ bytes: ArraySlice<UInt8>, as: T.Type) -> T {
        bytes.reduce(T.zero) { ($0 << 8) | T(truncatingIfNeeded: $1) }
    }
}

/// A Swift type that can be read from a binary-format cell. `Optional` of one reads NULL
/// as nil; the plain type refuses NULL with an error naming the column.
public protocol PostgresDecodable {
    static func decode(_ cell: PostgresCell) throws(PostgresError) -> Self
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> Wrapped? {
        cell.isNull ? nil : try Wrapped.decode(cell)
    }
}

extension Int64: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> Int64 {
        let bytes = try cell.nonNull()
        switch (cell.typeOID, bytes.count) {
        case (PostgresType.int8, 8): return cell.integer(bytes, as: Int64.self)
        case (PostgresType.int4, 4): return Int64(cell.integer(bytes, as: Int32.self))
        case (PostgresType.int2, 2): return Int64(cell.integer(bytes, as: Int16.self))
        case (PostgresType.oid, 4): return Int64(cell.integer(bytes, as: UInt32.self))
        default: throw cell.mismatch("an integer")
        }
    }
}

extension Int: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> Int {
        Int(try Int64.decode(cell))
    }
}

extension Int32: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> Int32 {
        let value = try Int64.decode(cell)
        guard let narrow = Int32(exactly: value) else { throw cell.mismatch("an Int32") }
        return narrow
    }
}

extension Double: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> Double {
        let bytes = try cell.nonNull()
        switch (cell.typeOID, bytes.count) {
        case (PostgresType.float8, 8): return Double(bitPattern: cell.integer(bytes, as: UInt64.self))
        case (PostgresType.float4, 4): return Double(Float(bitPattern: cell.integer(bytes, as: UInt32.self)))
        default: throw cell.mismatch("a float")
        }
    }
}

extension Bool: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> Bool {
        let bytes = try cell.nonNull()
        guard cell.typeOID == PostgresType.bool, bytes.count == 1 else { throw cell.mismatch("a bool") }
        return bytes.first! != 0
    }
}

extension String: PostgresDecodable {
    /// Text types, and json/jsonb as their JSON text.
    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> String {
        var bytes = try cell.nonNull()
        switch cell.typeOID {
        case PostgresType.text, PostgresType.varchar, PostgresType.bpchar, PostgresType.name,
             PostgresType.json:
            break
        case PostgresType.jsonb:
            guard bytes.first == 1 else { throw cell.mismatch("jsonb version 1") }
            bytes = bytes.dropFirst()
        case PostgresType.inet, PostgresType.cidr:
            return try PostgresInet.decode(cell).description
        default:
            throw cell.mismatch("text")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Array: PostgresDecodable where Element == UInt8 {
    /// bytea, verbatim.
    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> [UInt8] {
        let bytes = try cell.nonNull()
        guard cell.typeOID == PostgresType.bytea else { throw cell.mismatch("bytea") }
        return Array(bytes)
    }
}

extension Date: PostgresDecodable {
    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> Date {
        let bytes = try cell.nonNull()
        guard cell.typeOID == PostgresType.timestamptz || cell.typeOID == PostgresType.timestamp,
              bytes.count == 8 else { throw cell.mismatch("a timestamp") }
        return PostgresTime.date(fromMicroseconds: cell.integer(bytes, as: Int64.self))
    }
}

/// An `inet` or `cidr` value: address bytes and prefix length.
public struct PostgresInet: Sendable, Hashable, CustomStringConvertible, PostgresDecodable {
    public let address: [UInt8]
    public let prefixLength: Int

    public var isIPv6: Bool { address.count == 16 }

    public var description: String {
        let text: String
        if isIPv6 {
            var buffer = [CChar](repeating: 0, count: 64)
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: address) }
            inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
            text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        } else {
            text = address.map(String.init).joined(separator: ".")
        }
        let full = isIPv6 ? 128 : 32
        return prefixLength == full ? text : "\(text)/\(prefixLength)"
    }

    public static func decode(_ cell: PostgresCell) throws(PostgresError) -> PostgresInet {
        let bytes = Array(try cell.nonNull())
        guard cell.typeOID == PostgresType.inet || cell.typeOID == PostgresType.cidr,
              bytes.count >= 4, bytes.count == 4 + Int(bytes[3]),
              bytes[3] == 4 || bytes[3] == 16 else { throw cell.mismatch("inet") }
        return PostgresInet(address: Array(bytes[4...]), prefixLength: Int(bytes[1]))
    }
}
