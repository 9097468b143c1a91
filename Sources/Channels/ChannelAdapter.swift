public import Foundation
/// The HTTP answer the receiver gives a channel for a callback.
public struct Acknowledgement: Sendable, Hashable {
    public var status: Int
    public var headers: [HeaderField]
    public var body: [UInt8]

    public init(status: Int, headers: [HeaderField], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The answer a channel type expects once its callback is stored:
    /// alipay `200 text/plain success`; wechatpay_v3 `204` (no body);
    /// points `200 application/json {"code":"SUCCESS"}`.
    public static func success(for type: ChannelType) -> Acknowledgement {
        switch type {
        case .alipay:
            Acknowledgement(status: 200, headers: [HeaderField(name: "Content-Type", value: "text/plain; charset=utf-8")], body: Array("success".utf8))
        case .wechatpayV3:
            Acknowledgement(status: 204, headers: [], body: [])
        case .points:
            Acknowledgement(status: 200, headers: [HeaderField(name: "Content-Type", value: "application/json")], body: Array(#"{"code":"SUCCESS"}"#.utf8))
        }
    }

    /// The answer that makes a channel retry (the callback was not stored), with `status`
    /// (default 503). alipay `text/plain fail`; wechatpay_v3 and points
    /// `{"code":"FAIL","message":…}`. `message` must not carry payload or secrets.
    public static func failure(for type: ChannelType, status: Int = 503, message: String) -> Acknowledgement {
        switch type {
        case .alipay:
            return Acknowledgement(status: status, headers: [HeaderField(name: "Content-Type", value: "text/plain; charset=utf-8")], body: Array("fail".utf8))
        case .wechatpayV3, .points:
            let body = JSONValue.object(["code": .string("FAIL"), "message": .string(message)]).serialized()
            return Acknowledgement(status: status, headers: [HeaderField(name: "Content-Type", value: "application/json")], body: Array(body.utf8))
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

    /// Proves the callback genuine and normalizes it. Pure CPU work: no I/O.
    /// Checks, in order: source address, kind, required fields and headers, signature
    /// (and timestamp, decryption), merchant identity, then field formats.
    func verify(_ raw: RawCallback) throws(Rejection) -> PaymentNotification

    /// The signed order-query request (CPU work: an RSA signature for Alipay and WeChat Pay).
    func queryRequest(outTradeNo: String, now: Date) throws(QueryError) -> ChannelRequest

    /// The channel's answer, its signature verified (CPU work).
    func queryResult(_ response: ChannelResponse, outTradeNo: String, now: Date) throws(QueryError) -> OrderQueryResult

    /// Sends query requests.
    var queryTransport: any QueryTransport { get }
    /// `query_timeout_ms`.
    var queryTimeout: Duration { get }

    /// The order number the callback names, read without proving anything: it picks the
    /// order for the reconciliation query that follows a failed signature, and labels the
    /// stored row. Never move an order on it.
    func unverifiedOutTradeNo(_ raw: RawCallback) -> String?
}

extension ChannelAdapter {
    /// Asks the channel for the order's state: request, send, verified answer. Callers that
    /// keep CPU work off the shared executor run the three steps themselves.
    public func queryOrder(outTradeNo: String) async throws(QueryError) -> OrderQueryResult {
        let request = try queryRequest(outTradeNo: outTradeNo, now: Date())
        let response = try await queryTransport.send(request, timeout: queryTimeout)
        return try queryResult(response, outTradeNo: outTradeNo, now: Date())
    }

    public func verifyResult(_ raw: RawCallback) -> Result<PaymentNotification, Rejection> {
        Result { () throws(Rejection) -> PaymentNotification in try verify(raw) }
    }

    public var successAcknowledgement: Acknowledgement { .success(for: channelType) }

    public func failureAcknowledgement(status: Int = 503, message: String) -> Acknowledgement {
        .failure(for: channelType, status: status, message: message)
    }

    /// Whether `allowed_ips` admits the address (an empty list admits every address).
    public func isAllowedSource(_ ip: String) -> Bool {
        allowedIPs.isEmpty || allowedIPs.containsAddress(ip)
    }

    func checkSource(_ raw: RawCallback) throws(Rejection) {
        guard isAllowedSource(raw.sourceIP) else { throw Rejection(.ipNotAllowed, "source address not in allowed_ips") }
    }
}
