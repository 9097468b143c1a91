public import Foundation

/// One bound parameter: its type OID, wire format and bytes. Every value reaches the
/// server as a parameter, never spliced into SQL text.
public struct PostgresBind: Sendable {
    public enum Format: Int32, Sendable { case text = 0, binary = 1 }

    public let typeOID: UInt32
    public let format: Format
    /// nil is SQL NULL.
    public let bytes: [UInt8]?

    public init(typeOID: UInt32, format: Format, bytes: [UInt8]?) {
        self.typeOID = typeOID
        self.format = format
        self.bytes = bytes
    }

    public static let null = PostgresBind(typeOID: 0, format: .text, bytes: nil)

    public static func text(_ value: String) -> PostgresBind {
        PostgresBind(typeOID: PostgresType.text, format: .binary, bytes: Array(value.utf8))
    }

    /// Nil is a NULL typed `text`, so a statement prepared on a NULL still takes text later.
    public static func text(_ value: String?) -> PostgresBind {
        value.map { .text($0) } ?? PostgresBind(typeOID: PostgresType.text, format: .binary, bytes: nil)
    }

    public static func int64(_ value: Int64) -> PostgresBind {
        PostgresBind(typeOID: PostgresType.int8, format: .binary, bytes: [UInt8](bigEndian: value))
    }

    public static func int(_ value: Int) -> PostgresBind { .int64(Int64(value)) }

    public static func int32(_ value: Int32) -> PostgresBind {
        PostgresBind(typeOID: PostgresType.int4, format: .binary, bytes: [UInt8](bigEndian: value))
    }

    public static func bool(_ value: Bool) -> PostgresBind {
        PostgresBind(typeOID: PostgresType.bool, format: .binary, bytes: [value ? 1 : 0])
    }

    public static func bytea(_ value: [UInt8]) -> PostgresBind {
        PostgresBind(typeOID: PostgresType.bytea, format: .binary, bytes: value)
    }

    public static func timestamptz(_ value: Date) -> PostgresBind {
        PostgresBind(typeOID: PostgresType.timestamptz, format: .binary,
                     bytes: [UInt8](bigEndian: PostgresTime.microseconds(from: value)))
    }

    public static func timestamptz(_ value: Date?) -> PostgresBind {
        value.map { .timestamptz($0) } ?? PostgresBind(typeOID: PostgresType.timestamptz, format: .binary, bytes: nil)
    }

    /// A value in PostgreSQL's text input syntax, typed by the SQL (`$1::inet`, `$2::jsonb`).
    public static func literal(_ value: String) -> PostgresBind {
        PostgresBind(typeOID: 0, format: .text, bytes: Array(value.utf8))
    }

    // Arrays go in the binary array format, so `unnest($1::bytea[])` takes raw bytes
    // with no escaping.

    public static func textArray(_ values: [String?]) -> PostgresBind {
        utf8Array(elementOID: PostgresType.text, arrayOID: PostgresType.textArray, values)
    }

    /// A `bytea[]` of each string's UTF-8 bytes (binary `text` and `bytea` elements are the
    /// same bytes).
    public static func byteaArray(utf8 values: [String]) -> PostgresBind {
        utf8Array(elementOID: PostgresType.bytea, arrayOID: PostgresType.byteaArray, values)
    }

    private static func utf8Array(elementOID: UInt32, arrayOID: UInt32, _ values: [String?]) -> PostgresBind {
        // Written straight from each string's UTF-8: no array per element.
        var out = arrayHeader(elementOID: elementOID, count: values.count, hasNull: values.contains(nil),
                              payloadBytes: values.reduce(0) { $0 + 4 + ($1?.utf8.count ?? 0) })
        for value in values {
            if let value {
                out.appendBigEndian(Int32(value.utf8.count))
                out.append(contentsOf: value.utf8)
            } else {
                out.appendBigEndian(Int32(-1))
            }
        }
        return PostgresBind(typeOID: arrayOID, format: .binary, bytes: out)
    }

    public static func byteaArray(_ values: [[UInt8]?]) -> PostgresBind {
        array(elementOID: PostgresType.bytea, arrayOID: PostgresType.byteaArray, values)
    }

    public static func int64Array(_ values: [Int64?]) -> PostgresBind {
        integerArray(elementOID: PostgresType.int8, arrayOID: PostgresType.int8Array, values)
    }

    public static func int32Array(_ values: [Int32?]) -> PostgresBind {
        integerArray(elementOID: PostgresType.int4, arrayOID: PostgresType.int4Array, values)
    }

    public static func timestamptzArray(_ values: [Date?]) -> PostgresBind {
        integerArray(elementOID: PostgresType.timestamptz, arrayOID: PostgresType.timestamptzArray,
                     values.map { $0.map(PostgresTime.microseconds(from:)) })
    }

    private static func integerArray<T: FixedWidthInteger>(elementOID: UInt32, arrayOID: UInt32,
                                                           _ values: [T?]) -> PostgresBind {
        let width = MemoryLayout<T>.size
        var out = arrayHeader(elementOID: elementOID, count: values.count, hasNull: values.contains(nil),
                              payloadBytes: values.count * (4 + width))
        for value in values {
            if let value {
                out.appendBigEndian(Int32(width))
                out.appendBigEndian(value)
            } else {
                out.appendBigEndian(Int32(-1))
            }
        }
        return PostgresBind(typeOID: arrayOID, format: .binary, bytes: out)
    }

    private static func array(elementOID: UInt32, arrayOID: UInt32, _ elements: [[UInt8]?]) -> PostgresBind {
        var out = arrayHeader(elementOID: elementOID, count: elements.count, hasNull: elements.contains { $0 == nil },
                              payloadBytes: elements.reduce(0) { $0 + 4 + ($1?.count ?? 0) })
        for element in elements {
            if let element {
                out.appendBigEndian(Int32(element.count))
                out += element
            } else {
                out.appendBigEndian(Int32(-1))
            }
        }
        return PostgresBind(typeOID: arrayOID, format: .binary, bytes: out)
    }

    /// A one-dimensional binary array's header, with room reserved for its elements.
    private static func arrayHeader(elementOID: UInt32, count: Int, hasNull: Bool, payloadBytes: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20 + payloadBytes)
        out.appendBigEndian(Int32(count == 0 ? 0 : 1))  // dimensions
        out.appendBigEndian(Int32(hasNull ? 1 : 0))
        out.appendBigEndian(elementOID)
        if count > 0 {
            out.appendBigEndian(Int32(count))
            out.appendBigEndian(Int32(1))  // lower bound
        }
        return out
    }
}

/// The built-in type OIDs this layer reads and writes.
public enum PostgresType {
    public static let bool: UInt32 = 16
    public static let bytea: UInt32 = 17
    public static let name: UInt32 = 19
    public static let int8: UInt32 = 20
    public static let int2: UInt32 = 21
    public static let int4: UInt32 = 23
    public static let text: UInt32 = 25
    public static let oid: UInt32 = 26
    public static let json: UInt32 = 114
    public static let float4: UInt32 = 700
    public static let float8: UInt32 = 701
    public static let cidr: UInt32 = 650
    public static let inet: UInt32 = 869
    public static let bpchar: UInt32 = 1042
    public static let varchar: UInt32 = 1043
    public static let timestamp: UInt32 = 1114
    public static let timestamptz: UInt32 = 1184
    public static let uuid: UInt32 = 2950
    public static let jsonb: UInt32 = 3802
    public static let void: UInt32 = 2278
    public static let boolArray: UInt32 = 1000
    public static let byteaArray: UInt32 = 1001
    public static let int4Array: UInt32 = 1007
    public static let textArray: UInt32 = 1009
    public static let int8Array: UInt32 = 1016
    public static let timestamptzArray: UInt32 = 1185
}

/// PostgreSQL's binary timestamps count microseconds from 2000-01-01 00:00:00 UTC.
enum PostgresTime {
    static let epochOffset: TimeInterval = 946_684_800

    static func microseconds(from date: Date) -> Int64 {
        let seconds = date.timeIntervalSince1970 - epochOffset
        return Int64((seconds * 1_000_000).rounded())
    }

    static func date(fromMicroseconds value: Int64) -> Date {
        Date(timeIntervalSince1970: epochOffset + Double(value) / 1_000_000)
    }
}

extension Array where Element == UInt8 {
    /// `value` in network byte order.
    init<T: FixedWidthInteger>(bigEndian value: T) {
        self = Swift.withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    /// Appends `value` in network byte order, with no array made for it.
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}
