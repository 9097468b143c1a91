public import Foundation
public import PayhookCore

/// A callback a worker holds a lease on.
public struct ClaimedCallback: Sendable {
    public let id: Int64
    /// This attempt's number (1-based); the fence for finishing it.
    public let attempt: Int32
    public let leaseExpiresAt: Date
    /// The stored channel id (readable even when the rest of the row is not).
    public let channel: String
    /// The stored callback, or why the row could not be read back.
    public let stored: Result<RawCallback, CorruptRow>

    public init(id: Int64, attempt: Int32, leaseExpiresAt: Date, channel: String, stored: Result<RawCallback, CorruptRow>) {
        self.id = id
        self.attempt = attempt
        self.leaseExpiresAt = leaseExpiresAt
        self.channel = channel
        self.stored = stored
    }
}

/// A stored callback row that does not read back (a hand-edited or damaged column). Never
/// a rejection: the callback may be genuine, so it goes to the dead letters for an operator.
public struct CorruptRow: Error, Sendable, Equatable, CustomStringConvertible {
    /// The column that does not read, e.g. `headers`.
    public let column: String
    public let problem: String

    public init(column: String, problem: String) {
        self.column = column
        self.problem = problem
    }

    public var description: String { "stored \(column) \(problem)" }
}

enum HeaderCoding {
    /// Headers are stored as a JSON array of `[name, value]` pairs, which keeps order and
    /// repeats. Written by hand: this runs once per received callback, and Foundation's
    /// JSONEncoder, or appending to a `String` scalar by scalar, cost more than the rest of
    /// the enqueue path.
    static func encode(_ headers: [HeaderField]) -> String {
        var json: [UInt8] = []
        json.reserveCapacity(headers.reduce(2) { $0 + $1.name.utf8.count + $1.value.utf8.count + 8 })
        json.append(UInt8(ascii: "["))
        for (index, header) in headers.enumerated() {
            if index > 0 { json.append(UInt8(ascii: ",")) }
            json.append(UInt8(ascii: "["))
            appendString(header.name, to: &json)
            json.append(UInt8(ascii: ","))
            appendString(header.value, to: &json)
            json.append(UInt8(ascii: "]"))
        }
        json.append(UInt8(ascii: "]"))
        return String(decoding: json, as: UTF8.self)
    }

    private static func appendString(_ text: String, to json: inout [UInt8]) {
        json.append(UInt8(ascii: "\""))
        if text.utf8.contains(where: needsEscape) {
            for byte in text.utf8 { appendEscaping(byte, to: &json) }
        } else {
            json.append(contentsOf: text.utf8)  // the usual case, copied whole
        }
        json.append(UInt8(ascii: "\""))
    }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    private static func appendEscaping(_ byte: UInt8, to json: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): json.append(UInt8(ascii: "\\")); json.append(byte)
        case 0x0A: json.append(UInt8(ascii: "\\")); json.append(UInt8(ascii: "n"))
        case 0x0D: json.append(UInt8(ascii: "\\")); json.append(UInt8(ascii: "r"))
        case 0x09: json.append(UInt8(ascii: "\\")); json.append(UInt8(ascii: "t"))
        case ..<0x20:
            let low = byte & 0x0F
            json.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), 0x30, 0x30, 0x30 + (byte >> 4), low < 10 ? 0x30 + low : 0x57 + low])
        default: json.append(byte)  // UTF-8 passes through as it is
        }
    }

    static func decode(_ json: String) throws(CorruptRow) -> [HeaderField] {
        let pairs: [[String]]
        do {
            pairs = try JSONDecoder().decode([[String]].self, from: Data(json.utf8))
        } catch {
            throw CorruptRow(column: "headers", problem: "is not an array of [name, value] pairs")
        }
        var headers: [HeaderField] = []
        headers.reserveCapacity(pairs.count)
        for pair in pairs {
            guard pair.count == 2 else { throw CorruptRow(column: "headers", problem: "holds a pair of \(pair.count) strings") }
            headers.append(HeaderField(name: pair[0], value: pair[1]))
        }
        return headers
    }
}
