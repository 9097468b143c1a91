import Foundation

/// Alipay's signing rules, shared by the adapter, the query client and the channel side.
enum AlipaySignature {
    enum Algorithm: Sendable { case rsa2, rsa }

    /// The text Alipay signs: every parameter except `sign` and `sign_type` with a non-empty
    /// value, sorted by key (byte order), joined as `k=v` with `&`, over the raw (decoded)
    /// bytes in the message's charset. nil when a key repeats (ambiguous).
    static func signContent(_ pairs: [FormEncoding.Pair], excludingSignType: Bool = true) -> [UInt8]? {
        var kept = pairs.filter { !$0.value.isEmpty && $0.key != "sign" && !(excludingSignType && $0.key == "sign_type") }
        kept.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(kept.reduce(0) { $0 + $1.key.utf8.count + $1.value.count + 2 })
        var previous: String? = nil
        for (i, pair) in kept.enumerated() {
            if pair.key == previous { return nil }
            previous = pair.key
            if i > 0 { out.append(UInt8(ascii: "&")) }
            out.append(contentsOf: pair.key.utf8)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: pair.value)
        }
        return out
    }

    static func decodeBase64(_ bytes: [UInt8]) -> [UInt8]? {
        guard let data = Data(base64Encoded: Data(bytes)) else { return nil }
        return Array(data)
    }

    static func decodeBase64(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text) else { return nil }
        return Array(data)
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// Alipay trade status → normalized status.
    static func status(_ tradeStatus: String) -> PaymentStatus {
        switch tradeStatus {
        case "TRADE_SUCCESS", "TRADE_FINISHED": .paid
        case "TRADE_CLOSED": .closed
        case "WAIT_BUYER_PAY": .pending
        default: .other(tradeStatus)
        }
    }

    static func tradeStatus(_ status: PaymentStatus) -> String {
        switch status {
        case .paid: "TRADE_SUCCESS"
        case .closed: "TRADE_CLOSED"
        case .pending: "WAIT_BUYER_PAY"
        case .other(let raw): raw
        }
    }
}

/// The charsets Alipay messages name, and how to read their text.
enum AlipayCharset: Sendable {
    case utf8, gbk

    init?(name: String) {
        switch name.lowercased() {
        case "utf-8", "utf8": self = .utf8
        case "gbk", "gb2312", "gb18030": self = .gbk
        default: return nil
        }
    }

    /// Text for display fields (`subject`); nil when the bytes are not valid in the charset.
    func decode(_ bytes: [UInt8]) -> String? {
        switch self {
        case .utf8: return String(validating: bytes, as: UTF8.self)
        case .gbk: return GBK.decode(bytes)
        }
    }

    func encode(_ text: String) -> [UInt8]? {
        switch self {
        case .utf8: return Array(text.utf8)
        case .gbk: return GBK.encode(text)
        }
    }
}
