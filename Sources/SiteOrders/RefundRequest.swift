public import Channels
import Crypto
public import Foundation
public import PayhookCore

/// `POST /v1/orders/{id}/refunds`, read and checked before anything is written. Pure.
public struct RefundRequest: Sendable, Equatable {
    /// The site's refund number: the idempotency key, sent to the channel as its own
    /// (WeChat Pay `out_refund_no`, Alipay `out_request_no`, points `reverse_no`).
    public var outRefundNo: String
    public var amountMinor: Int64
    public var reason: String?

    public static let fields: Set<String> = ["out_refund_no", "amount", "reason"]
    /// WeChat Pay's `reason` is at most 80 characters.
    public static let maxReason = 80

    public static func parse(_ body: [UInt8]) throws(OrderError) -> RefundRequest {
        let json = try RequestBody.object(body, fields: fields)
        let number: String
        switch json["out_refund_no"] {
        case nil, .null?: throw .missingField("out_refund_no")
        case .string(let text)?:
            // What every channel takes: Alipay out_request_no ≤ 64, WeChat Pay out_refund_no
            // 1-64 of [0-9A-Za-z_-|*@], points reverse_no 1-64 of [A-Za-z0-9_-].
            guard (1...64).contains(text.utf8.count), text.utf8.allSatisfy(Self.isRefundNoByte) else {
                throw .invalidRefundNo("must be 1-64 letters, digits, _ or -")
            }
            number = text
        default: throw .invalidRefundNo("must be a string")
        }
        let amount: Int64
        switch json["amount"] {
        case nil, .null?: throw .missingField("amount")
        case .string(let text)?:
            guard let parsed = Money.parseMinorUnits(text) else {
                throw .invalidAmount("must be a decimal string such as \"10.00\": digits, at most 2 after the point")
            }
            guard parsed > 0 else { throw .amountOutOfRange("must be more than 0.00") }
            amount = parsed
        default: throw .invalidAmount("must be a decimal string such as \"10.00\", not a JSON number")
        }
        var reason: String?
        switch json["reason"] {
        case nil, .null?: break
        case .string(let text)?:
            guard !text.isEmpty, text.count <= maxReason else { throw .invalidField("reason", "must be 1-\(maxReason) characters") }
            guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw .invalidField("reason", "must not contain control characters")
            }
            reason = text
        default: throw .invalidField("reason", "must be a string")
        }
        return RefundRequest(outRefundNo: number, amountMinor: amount, reason: reason)
    }

    static func isRefundNoByte(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }

    /// SHA-256 over the order and the request, each part length-prefixed: the same request
    /// again has the same digest, any other body another.
    public func digest(outTradeNo: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for part in [outTradeNo, outRefundNo, String(amountMinor), reason ?? ""] {
            bytes.append(contentsOf: "\(part.utf8.count):".utf8)
            bytes.append(contentsOf: part.utf8)
        }
        return Array(SHA256.hash(data: bytes))
    }
}
