public import PayhookCore
public import Foundation
import Crypto


/// The points partner protocol's signing rules (see `Points/PROTOCOL.md`).
package enum PointsSignature {
    package static let partnerHeader = "X-Points-Partner-Id"
    package static let timestampHeader = "X-Points-Timestamp"
    package static let nonceHeader = "X-Points-Nonce"
    package static let signatureHeader = "X-Points-Signature"
    package static let signatureTypeHeader = "X-Points-Signature-Type"
    package static let signatureType = "HMAC-SHA256"

    package static func sign(_ message: [UInt8], secret: SharedSecret) -> String {
        Bytes.hexLower(HMAC<SHA256>.authenticationCode(for: message, using: secret.key))
    }

    package static func headers(message: (String, String) -> [UInt8], partnerID: String, secret: SharedSecret, timestamp: Date, nonce: String) -> [HeaderField] {
        let ts = String(Int64(timestamp.timeIntervalSince1970.rounded(.down)))
        return [
            HeaderField(name: partnerHeader, value: partnerID), HeaderField(name: timestampHeader, value: ts),
            HeaderField(name: nonceHeader, value: nonce),
            HeaderField(name: signatureHeader, value: sign(message(ts, nonce), secret: secret)),
            HeaderField(name: signatureTypeHeader, value: signatureType),
        ]
    }

    package static func validNonce(_ nonce: String) -> Bool {
        (8...64).contains(nonce.utf8.count)
            && nonce.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x5F || $0 == 0x2D }
    }

    /// Checks headers and the HMAC (constant-time). `message` builds the signed bytes from
    /// the timestamp and nonce. Order: missing header, type, formats, stale, signature, partner.
    package static func verify(headers: [HeaderField], message: (String, String) -> [UInt8], partnerID: String, secret: SharedSecret, now: Date, maxSkewSeconds: Int) throws(Rejection) {
        guard let partner = headers.first(named: partnerHeader), let timestamp = headers.first(named: timestampHeader),
            let nonce = headers.first(named: nonceHeader), let signatureText = headers.first(named: signatureHeader)
        else { throw .malformed("X-Points-Partner-Id, -Timestamp, -Nonce and -Signature headers are required") }
        if let type = headers.first(named: signatureTypeHeader), type != signatureType {
            throw Rejection(.unsupportedSignType, Rejection.quoted(type))
        }
        guard validNonce(nonce) else { throw .malformed("X-Points-Nonce") }
        guard timestamp.utf8.count <= 12, let seconds = Int64(timestamp), seconds >= 0 else { throw .malformed("X-Points-Timestamp") }
        guard signatureText.utf8.count == 64, let mac = Bytes.fromHex(signatureText) else { throw .malformed("X-Points-Signature") }
        let skew = abs(now.timeIntervalSince1970 - Double(seconds))
        guard skew <= Double(maxSkewSeconds) else { throw Rejection(.staleTimestamp, "\(Int64(skew)) s from receive time") }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: message(timestamp, nonce), using: secret.key) else {
            throw Rejection(.badSignature)
        }
        // Checked after the proof, so a forger cannot make us record a mismatch.
        guard partner == partnerID else { throw Rejection(.merchantMismatch, "X-Points-Partner-Id") }
    }

    package static func bodyMessage(_ body: [UInt8]) -> (String, String) -> [UInt8] {
        { ts, nonce in SignedMessage.answer(timestamp: ts, nonce: nonce, body: body) }
    }

    package static func requestMessage(method: String, target: String, body: [UInt8]) -> (String, String) -> [UInt8] {
        { ts, nonce in SignedMessage.request(method: method, target: target, timestamp: ts, nonce: nonce, body: body) }
    }

    package static func status(_ text: String) -> PaymentStatus {
        switch text {
        case "PAID": .paid
        case "CLOSED": .closed
        case "PENDING": .pending
        default: .other(text)
        }
    }

    package static func statusText(_ status: PaymentStatus) -> String {
        switch status {
        case .paid: "PAID"
        case .closed: "CLOSED"
        case .pending: "PENDING"
        case .other(let raw): raw
        }
    }

    /// Reads the order fields shared by notifies and query answers.
    package static func order(_ json: JSONValue, channel: String, partnerID: String) throws(Rejection) -> (OrderEvidence, points: Int64?) {
        guard case .object = json else { throw .malformed("body is not an object") }
        guard let partner = json["partner_id"]?.stringValue else { throw .malformed("partner_id") }
        guard partner == partnerID else { throw Rejection(.merchantMismatch, "partner_id") }
        guard let outTradeNo = json["out_trade_no"]?.stringValue, !outTradeNo.isEmpty else { throw .malformed("out_trade_no") }
        guard let statusText = json["status"]?.stringValue else { throw .malformed("status") }
        guard let amountText = json["amount"]?.stringValue, let amount = Money.parseMinorUnits(amountText) else { throw .malformed("amount") }
        let currency = json["currency"]?.stringValue ?? "CNY"
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { throw .malformed("currency") }
        var points: Int64? = nil
        if let value = json["points"] {
            guard let p = value.int64Value, p >= 0 else { throw .malformed("points") }
            points = p
        }
        var paidAt: Date? = nil
        if let text = json["paid_at"]?.stringValue {
            guard let date = Timestamps.parseRFC3339(text) else { throw .malformed("paid_at") }
            paidAt = date
        }
        let order = OrderEvidence(
            channel: channel, outTradeNo: outTradeNo, channelTradeNo: json["points_trade_no"]?.stringValue, status: status(statusText),
            amountMinor: amount, currency: currency, merchant: MerchantIdentity(appID: nil, merchantID: partner), paidAt: paidAt,
            payer: json["user_id"]?.stringValue)
        return (order, points)
    }
}

/// `type: points`: the points partner (see `Points/PROTOCOL.md`).
public struct PointsAdapter: ChannelAdapter {
    public let configuration: PointsConfiguration

    public init(configuration: PointsConfiguration) {
        self.configuration = configuration
    }

    public var channelID: String { configuration.channelID }
    public var channelType: ChannelType { .points }
    public var allowedIPs: [CIDR] { configuration.allowedIPs }
    public var merchant: MerchantIdentity { MerchantIdentity(appID: nil, merchantID: configuration.partnerID) }

    public func verify(_ raw: RawCallback) throws(Rejection) -> PaymentNotification {
        try checkSource(raw)
        guard raw.kind == .notify else { throw Rejection(.unsupportedKind, "the points partner sends no browser return") }
        try PointsSignature.verify(
            headers: raw.headers, message: PointsSignature.bodyMessage(raw.body), partnerID: configuration.partnerID,
            secret: configuration.hmacSecret, now: raw.receivedAt, maxSkewSeconds: configuration.maxClockSkewSeconds)
        let json: JSONValue
        do { json = try JSONValue.parse(raw.body) } catch { throw .malformed("body is not JSON") }
        guard let eventID = json["event_id"]?.stringValue, !eventID.isEmpty else { throw .malformed("event_id") }
        let (order, points) = try PointsSignature.order(json, channel: configuration.channelID,
                                                        partnerID: configuration.partnerID)
        return PaymentNotification(evidence: order, channelType: .points, eventID: eventID, points: points)
    }

    public func unverifiedOutTradeNo(_ raw: RawCallback) -> String? {
        (try? JSONValue.parse(raw.body))?["out_trade_no"]?.stringValue
    }

    public func queryRequest(outTradeNo: String, now: Date) throws(QueryError) -> ChannelRequest {
        PointsQuery.makeRequest(configuration: configuration, outTradeNo: outTradeNo, now: now, nonce: Nonce.random(32))
    }

    public func queryResult(_ response: ChannelResponse, outTradeNo: String, now: Date) throws(QueryError) -> OrderQueryResult {
        try PointsQuery.interpret(response, configuration: configuration, outTradeNo: outTradeNo, now: now)
    }

    public var queryTimeout: Duration { configuration.queryTimeout }
}

/// The points order query: signed request, verified answer. Pure functions.
public enum PointsQuery {
    public static func makeRequest(configuration: PointsConfiguration, outTradeNo: String, now: Date, nonce: String) -> ChannelRequest {
        let path = "/v1/orders/" + FormEncoding.encodePathSegment(outTradeNo) + "?partner_id=" + FormEncoding.encodePathSegment(configuration.partnerID)
        return PointsAPI.signedRequest(method: "GET", path: path, body: [], configuration: configuration, now: now, nonce: nonce)
    }

    public static func interpret(_ response: ChannelResponse, configuration: PointsConfiguration, outTradeNo: String, now: Date) throws(QueryError) -> OrderQueryResult {
        let json = try? JSONValue.parse(response.body)
        let code = json?["code"]?.stringValue ?? ""
        switch response.status {
        case 200:
            try PointsAPI.verify(response, configuration: configuration, now: now)
            guard let json else { throw .permanent(.malformedResponse, "not JSON") }
            let order = try PointsAPI.order(json, configuration: configuration, outTradeNo: outTradeNo)
            return .found(order)
        case 404 where code == "ORDER_NOT_FOUND":
            try PointsAPI.verify(response, configuration: configuration, now: now)
            return .notFound(outTradeNo: outTradeNo)
        default:
            throw PointsAPI.failure(response, code: code)
        }
    }
}

/// What every call to the points partner's API shares: the signed request over the whole
/// target, the answer's HMAC check, the order fields and the error classification. Used by
/// the v1 query and the v2 deduct and reverse calls alike.
enum PointsAPI {
    /// `{api_base_url}{path}`, signed over `METHOD\ntarget\nts\nnonce\nbody\n` where the target
    /// includes the base URL's own path. A body is sent as JSON.
    static func signedRequest(method: String, path: String, body: [UInt8], configuration: PointsConfiguration, now: Date, nonce: String) -> ChannelRequest {
        var base = configuration.apiBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        var request = ChannelRequest(method: method, url: base + path, headers: [], body: body)
        request.headers = PointsSignature.headers(
            message: PointsSignature.requestMessage(method: method, target: request.target, body: body),
            partnerID: configuration.partnerID, secret: configuration.hmacSecret, timestamp: now, nonce: nonce)
        request.headers.append(HeaderField(name: "Accept", value: "application/json"))
        if !body.isEmpty { request.headers.append(HeaderField(name: "Content-Type", value: "application/json")) }
        return request
    }

    /// The answer's headers and HMAC over `ts\nnonce\nbody\n`. A stale timestamp is
    /// transient (a fresh answer may pass); any other failure permanent.
    static func verify(_ response: ChannelResponse, configuration: PointsConfiguration, now: Date) throws(QueryError) {
        do {
            try PointsSignature.verify(
                headers: response.headers, message: PointsSignature.bodyMessage(response.body), partnerID: configuration.partnerID,
                secret: configuration.hmacSecret, now: now, maxSkewSeconds: configuration.maxClockSkewSeconds)
        } catch {
            if error.reason == .staleTimestamp { throw .transient(.badSignature, error.description) }
            throw .permanent(.badSignature, error.description)
        }
    }

    /// The order fields of a verified answer, which must be about `outTradeNo`.
    static func order(_ json: JSONValue, configuration: PointsConfiguration, outTradeNo: String) throws(QueryError) -> OrderEvidence {
        let order: OrderEvidence
        do { order = try PointsSignature.order(json, channel: configuration.channelID, partnerID: configuration.partnerID).0 } catch {
            throw .permanent(.malformedResponse, error.description)
        }
        guard order.outTradeNo == outTradeNo else { throw .permanent(.malformedResponse, "out_trade_no differs from the request") }
        return order
    }

    /// 5xx, 429 and 408 are transient (the outcome is unknown, never failed); any other
    /// answer permanent, with the status and the partner's code in the detail.
    static func failure(_ response: ChannelResponse, code: String) -> QueryError {
        let detail = "HTTP \(response.status) \(code.prefix(32))"
        if response.status >= 500 || response.status == 429 || response.status == 408 {
            return .transient(code.isEmpty ? .httpStatus : .channelError, detail)
        }
        return .permanent(code.isEmpty ? .httpStatus : .channelError, detail)
    }
}
