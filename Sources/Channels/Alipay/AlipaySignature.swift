package import PayhookCore
import Foundation

/// Alipay's signing rules, shared by the adapter, the query client and the channel side.
package enum AlipaySignature {
    package enum Algorithm: Sendable { case rsa2, rsa }

    /// The text Alipay signs: every parameter except `sign` and `sign_type` with a non-empty
    /// value, sorted by key (byte order), joined as `k=v` with `&`, over the raw (decoded)
    /// bytes in the message's charset. nil when a key repeats (ambiguous).
    package static func signContent(_ pairs: [FormEncoding.Pair], excludingSignType: Bool = true) -> [UInt8]? {
        pairs.withUnsafeBufferPointer { buffer in
            signContent(count: buffer.count, key: { buffer[$0].key }, excludingSignType: excludingSignType) { i, out in
                out.append(contentsOf: buffer[i].value)
            } valueIsEmpty: { buffer[$0].value.isEmpty }
        }
    }

    /// The same text straight from a decoded form's buffer: keys are compared as bytes and
    /// no `String` is made.
    package static func signContent(_ form: DecodedForm) -> [UInt8]? {
        form.storage.withUnsafeBufferPointer { storage in
            // Sort (first-8-bytes prefix, index) pairs: one integer compare decides almost
            // every comparison; equal prefixes fall back to the whole key.
            var order: [(prefix: UInt64, index: Int)] = []
            order.reserveCapacity(form.count)
            var total = 0
            for (index, entry) in form.entries.enumerated() where !entry.value.isEmpty {
                let name = UnsafeBufferPointer(rebasing: storage[entry.key])
                if isSignOrSignType(name) { continue }
                var prefix: UInt64 = 0
                for i in 0..<8 { prefix = prefix << 8 | UInt64(i < name.count ? name[i] : 0) }
                total += entry.key.count + entry.value.count + 2
                order.append((prefix, index))
            }
            func key(_ index: Int) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: storage[form.entries[index].key]) }
            order.sort { a, b in
                if a.prefix != b.prefix { return a.prefix < b.prefix }
                return key(a.index).lexicographicallyPrecedes(key(b.index))
            }
            var out: [UInt8] = []
            out.reserveCapacity(total)
            for position in order.indices {
                let entry = form.entries[order[position].index]
                if position > 0 {
                    let previous = order[position - 1]
                    if previous.prefix == order[position].prefix && key(previous.index).elementsEqual(key(order[position].index)) { return nil }
                    out.append(UInt8(ascii: "&"))
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: storage[entry.key]))
                out.append(UInt8(ascii: "="))
                out.append(contentsOf: UnsafeBufferPointer(rebasing: storage[entry.value]))
            }
            return out
        }
    }

    @inline(__always)
    private static func isSignOrSignType(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        (name.count == 4 && name.elementsEqual("sign".utf8)) || (name.count == 9 && name.elementsEqual("sign_type".utf8))
    }

    @inline(__always)
    private static func signContent(
        count: Int, key: (Int) -> String, excludingSignType: Bool, appendValue: (Int, inout [UInt8]) -> Void,
        valueIsEmpty: (Int) -> Bool
    ) -> [UInt8]? {
        // Sort (first-8-bytes prefix, index) pairs: one integer compare decides almost
        // every comparison; equal prefixes fall back to the whole key.
        var order: [(prefix: UInt64, index: Int)] = []
        order.reserveCapacity(count)
        var total = 0
        for index in 0..<count {
            if valueIsEmpty(index) { continue }
            var name = key(index)
            let prefix: UInt64? = name.withUTF8 { utf8 in
                if utf8.count == 4 && utf8[0] == 0x73 && utf8[1] == 0x69 && utf8[2] == 0x67 && utf8[3] == 0x6E { return nil }  // sign
                if excludingSignType && utf8.count == 9 && utf8.elementsEqual("sign_type".utf8) { return nil }
                var prefix: UInt64 = 0
                for i in 0..<8 { prefix = prefix << 8 | UInt64(i < utf8.count ? utf8[i] : 0) }
                total += utf8.count + 2
                return prefix
            }
            guard let prefix else { continue }
            order.append((prefix, index))
        }
        order.sort { a, b in
            if a.prefix != b.prefix { return a.prefix < b.prefix }
            return key(a.index).utf8.lexicographicallyPrecedes(key(b.index).utf8)
        }
        var out: [UInt8] = []
        out.reserveCapacity(total + 1024)
        for (position, entry) in order.enumerated() {
            let name = key(entry.index)
            if position > 0 {
                let previous = order[position - 1]
                if previous.prefix == entry.prefix && key(previous.index) == name { return nil }
                out.append(UInt8(ascii: "&"))
            }
            out.append(contentsOf: name.utf8)
            out.append(UInt8(ascii: "="))
            appendValue(entry.index, &out)
        }
        return out
    }

    package static func decodeBase64(_ bytes: [UInt8]) -> [UInt8]? { Base64.decode(bytes) }

    package static func decodeBase64(_ text: String) -> [UInt8]? { Base64.decode(text) }

    package static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// Alipay trade status → normalized status.
    package static func status(_ tradeStatus: String) -> PaymentStatus {
        switch tradeStatus {
        case "TRADE_SUCCESS", "TRADE_FINISHED": .paid
        case "TRADE_CLOSED": .closed
        case "WAIT_BUYER_PAY": .pending
        default: .other(tradeStatus)
        }
    }

    package static func tradeStatus(_ status: PaymentStatus) -> String {
        switch status {
        case .paid: "TRADE_SUCCESS"
        case .closed: "TRADE_CLOSED"
        case .pending: "WAIT_BUYER_PAY"
        case .other(let raw): raw
        }
    }
}

/// The charsets Alipay messages name, and how to read their text.
package enum AlipayCharset: Sendable {
    case utf8, gbk

    package init?(name: String) {
        switch name.lowercased() {
        case "utf-8", "utf8": self = .utf8
        case "gbk", "gb2312", "gb18030": self = .gbk
        default: return nil
        }
    }

    /// Text for display fields (`subject`); nil when the bytes are not valid in the charset.
    package func decode(_ bytes: [UInt8]) -> String? {
        switch self {
        case .utf8: return Bytes.utf8String(bytes)
        case .gbk: return GBK.decode(bytes)
        }
    }

    package func encode(_ text: String) -> [UInt8]? {
        switch self {
        case .utf8: return Array(text.utf8)
        case .gbk: return GBK.encode(text)
        }
    }
}
