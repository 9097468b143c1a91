public import Foundation
public import PayhookCore

/// The HTTP answers the receiver gives a channel for a callback, in that channel's format.
extension ChannelResponse {
    /// The answer a channel type expects once its callback is stored:
    /// alipay `200 text/plain success`; wechatpay_v3 `204` (no body);
    /// points `200 application/json {"code":"SUCCESS"}`.
    public static func acknowledgement(for type: ChannelType) -> ChannelResponse {
        switch type {
        case .alipay:
            ChannelResponse(status: 200, headers: [HeaderField(name: "Content-Type", value: "text/plain; charset=utf-8")], body: Array("success".utf8))
        case .wechatpayV3:
            ChannelResponse(status: 204, headers: [], body: [])
        case .points:
            ChannelResponse(status: 200, headers: [HeaderField(name: "Content-Type", value: "application/json")], body: Array(#"{"code":"SUCCESS"}"#.utf8))
        }
    }

    /// The answer that makes a channel retry (the callback was not stored), with `status`
    /// (default 503). alipay `text/plain fail`; wechatpay_v3 and points
    /// `{"code":"FAIL","message":…}`. `message` must not carry payload or secrets.
    public static func failure(for type: ChannelType, status: Int = 503, message: String) -> ChannelResponse {
        switch type {
        case .alipay:
            return ChannelResponse(status: status, headers: [HeaderField(name: "Content-Type", value: "text/plain; charset=utf-8")], body: Array("fail".utf8))
        case .wechatpayV3, .points:
            let body = JSONValue.object(["code": .string("FAIL"), "message": .string(message)]).serialized()
            return ChannelResponse(status: status, headers: [HeaderField(name: "Content-Type", value: "application/json")], body: Array(body.utf8))
        }
    }
}

/// One configured channel: parsing, proof, acknowledgement format, and order query.
public protocol ChannelAdapter: Sendable {
    /// The configured id, the `{channel}` in `/notify/{channel}`.
    var channelID: String { get }
    var channelType: ChannelType { get }
    /// `allowed_ips`; empty means the signature alone decides.
    var allowedIPs: [CIDR] { get }
    /// The app and merchant this channel is configured as, in the shape a verified notify
    /// names them (`OrderEvidence.merchant`); a merchant id of nil when the configuration
    /// names none (Alipay without `seller_id`).
    var merchant: MerchantIdentity { get }

    /// Proves the callback genuine and normalizes it. Pure CPU work: no I/O.
    /// Checks, in order: source address, kind, required fields and headers, signature
    /// (and timestamp, decryption), merchant identity, then field formats.
    func verify(_ raw: RawCallback) throws(Rejection) -> PaymentNotification

    /// The signed order-query request (CPU work: an RSA signature for Alipay and WeChat Pay).
    func queryRequest(outTradeNo: String, now: Date) throws(QueryError) -> ChannelRequest

    /// The channel's answer, its signature verified (CPU work).
    func queryResult(_ response: ChannelResponse, outTradeNo: String, now: Date) throws(QueryError) -> OrderQueryResult

    /// `query_timeout_ms`: how long the channel's API may take to answer.
    var queryTimeout: Duration { get }

    /// The order number the callback names, read without proving anything: it picks the
    /// order for the reconciliation query that follows a failed signature, and labels the
    /// stored row. Never move an order on it.
    func unverifiedOutTradeNo(_ raw: RawCallback) -> String?
}

extension ChannelAdapter {
    public func verifyResult(_ raw: RawCallback) -> Result<PaymentNotification, Rejection> {
        Result { () throws(Rejection) -> PaymentNotification in try verify(raw) }
    }

    /// Whether `allowed_ips` admits the address (an empty list admits every address).
    public func isAllowedSource(_ ip: String) -> Bool {
        allowedIPs.isEmpty || allowedIPs.containsAddress(ip)
    }

    /// `allowed_ips` hold the channel's servers; a browser return comes from the buyer, so
    /// only notifies are checked against them.
    func checkSource(_ raw: RawCallback) throws(Rejection) {
        guard raw.kind == .return || isAllowedSource(raw.clientAddress) else { throw Rejection(.ipNotAllowed, "source address not in allowed_ips") }
    }
}
