public import Foundation

/// One HTTP header as received: order and repeats are kept.
public struct HeaderField: Sendable, Equatable, Codable {
    public let name: String
    public let value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public enum CallbackKind: String, Sendable, Codable {
    case notify, `return`
}

/// A raw callback as the receiver captured it, before it is stored.
public struct NewCallback: Sendable, Equatable {
    public var channel: String
    public var kind: CallbackKind
    public var receivedAt: Date
    /// The client address resolved through trusted proxies.
    public var sourceIP: String?
    /// The address of the TCP peer.
    public var peerIP: String?
    public var method: String
    public var path: String
    public var query: String
    public var headers: [HeaderField]
    public var body: [UInt8]

    public init(channel: String, kind: CallbackKind = .notify, receivedAt: Date = Date(), sourceIP: String?,
                peerIP: String?, method: String, path: String, query: String = "", headers: [HeaderField],
                body: [UInt8]) {
        self.channel = channel
        self.kind = kind
        self.receivedAt = receivedAt
        self.sourceIP = sourceIP
        self.peerIP = peerIP
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }
}

/// A callback a worker holds a lease on.
public struct ClaimedCallback: Sendable {
    public let id: Int64
    /// This attempt's number (1-based); the fence for finishing it.
    public let attempt: Int32
    public let leaseExpiresAt: Date
    public let callback: NewCallback
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

    static func decode(_ json: String) -> [HeaderField] {
        guard let pairs = try? JSONDecoder().decode([[String]].self, from: Data(json.utf8)) else { return [] }
        return pairs.compactMap { $0.count == 2 ? HeaderField(name: $0[0], value: $0[1]) : nil }
    }
}
