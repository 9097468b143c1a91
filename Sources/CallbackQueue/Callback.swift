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
    /// JSONEncoder cost more than the rest of the enqueue path.
    static func encode(_ headers: [HeaderField]) -> String {
        var json = "["
        for (index, header) in headers.enumerated() {
            json += index == 0 ? "[" : ",["
            appendString(header.name, to: &json)
            json += ","
            appendString(header.value, to: &json)
            json += "]"
        }
        return json + "]"
    }

    private static func appendString(_ text: String, to json: inout String) {
        json += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": json += "\\\""
            case "\\": json += "\\\\"
            case "\n": json += "\\n"
            case "\r": json += "\\r"
            case "\t": json += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                json += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: json.unicodeScalars.append(scalar)
            }
        }
        json += "\""
    }

    static func decode(_ json: String) -> [HeaderField] {
        guard let pairs = try? JSONDecoder().decode([[String]].self, from: Data(json.utf8)) else { return [] }
        return pairs.compactMap { $0.count == 2 ? HeaderField(name: $0[0], value: $0[1]) : nil }
    }
}
