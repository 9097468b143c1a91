public import PayhookCore
public import Foundation

/// `type: wechatpay_v3`: JSON notifies signed RSA-SHA256 over `timestamp\nnonce\nbody\n`
/// by the platform key `Wechatpay-Serial` names, resource encrypted with the APIv3 key;
/// query `GET /v3/pay/transactions/out-trade-no/{no}`; ack HTTP 204.
public struct WeChatPayAdapter: ChannelAdapter {
    public let configuration: WeChatPayConfiguration

    public init(configuration: WeChatPayConfiguration) {
        self.configuration = configuration
    }

    public var channelID: String { configuration.channelID }
    public var channelType: ChannelType { .wechatpayV3 }
    public var allowedIPs: [CIDR] { configuration.allowedIPs }
    public var merchant: MerchantIdentity { MerchantIdentity(appID: configuration.appID, merchantID: configuration.mchID) }

    public func verify(_ raw: RawCallback) throws(Rejection) -> PaymentNotification {
        try checkSource(raw)
        guard raw.kind == .notify else { throw Rejection(.unsupportedKind, "WeChat Pay sends no browser return") }
        try WeChatPaySignature.verify(
            headers: raw.headers, body: raw.body, keys: configuration.platformKeys,
            now: raw.receivedAt, maxSkewSeconds: configuration.maxClockSkewSeconds)
        let (eventID, eventType, plaintext) = try raw.body.withUnsafeBufferPointer { body throws(Rejection) in
            guard let envelope = JSONObjectView(body) else { throw .malformed("body is not a JSON object") }
            guard let resource = envelope["resource"]?.object else { throw .malformed("resource missing or not an object") }
            return (envelope["id"]?.string, envelope["event_type"]?.string,
                    try WeChatPaySignature.decrypt(resource: resource, key: configuration.apiV3Key))
        }
        // REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED: a refund, never a payment.
        if let eventType, eventType.hasPrefix("REFUND.") {
            let (order, refund) = try WeChatPayRefund.refund(bytes: plaintext, configuration: configuration)
            return PaymentNotification(evidence: order, channelType: .wechatpayV3, eventID: eventID, refund: refund)
        }
        let order = try Self.transaction(plaintext, configuration: configuration)
        return PaymentNotification(evidence: order, channelType: .wechatpayV3, eventID: eventID)
    }

    /// The transaction in a decrypted resource.
    static func transaction(_ plaintext: [UInt8], configuration: WeChatPayConfiguration) throws(Rejection) -> OrderEvidence {
        try plaintext.withUnsafeBufferPointer { bytes throws(Rejection) in
            try WeChatPaySignature.transaction(json: UnsafeRawBufferPointer(bytes), channel: configuration.channelID, mchID: configuration.mchID, appID: configuration.appID)
        }
    }

    /// Decrypts the resource if the APIv3 key opens it; the signature is not checked.
    public func unverifiedOutTradeNo(_ raw: RawCallback) -> String? {
        raw.body.withUnsafeBufferPointer { body -> String? in
            guard let resource = JSONObjectView(body)?["resource"]?.object,
                let plaintext = try? WeChatPaySignature.decrypt(resource: resource, key: configuration.apiV3Key)
            else { return nil }
            return plaintext.withUnsafeBytes { JSONObjectView($0)?["out_trade_no"]?.string }
        }
    }

    public func queryRequest(outTradeNo: String, now: Date) throws(QueryError) -> ChannelRequest {
        try WeChatPayQuery.makeRequest(configuration: configuration, outTradeNo: outTradeNo, now: now, nonce: Nonce.random(32))
    }

    public func queryResult(_ response: ChannelResponse, outTradeNo: String, now: Date) throws(QueryError) -> OrderQueryResult {
        try WeChatPayQuery.interpret(response, configuration: configuration, outTradeNo: outTradeNo, now: now)
    }

    public var queryTimeout: Duration { configuration.queryTimeout }
}

/// The order query: signed request, verified answer. Pure functions.
public enum WeChatPayQuery {
    public static func path(outTradeNo: String) -> String {
        "/v3/pay/transactions/out-trade-no/" + FormEncoding.encodePathSegment(outTradeNo)
    }

    public static func makeRequest(configuration: WeChatPayConfiguration, outTradeNo: String, now: Date, nonce: String) throws(QueryError) -> ChannelRequest {
        let target = path(outTradeNo: outTradeNo) + "?mchid=" + FormEncoding.encodePathSegment(configuration.mchID)
        return try WeChatPayAPI.signedRequest(method: "GET", target: target, body: [], configuration: configuration, now: now, nonce: nonce)
    }

    /// 200 → the verified transaction; 404 `ORDER_NOT_EXIST` (verified) → not found;
    /// 5xx, 429 and `SYSTEM_ERROR`/`FREQUENCY_LIMITED` → transient; other answers permanent.
    public static func interpret(_ response: ChannelResponse, configuration: WeChatPayConfiguration, outTradeNo: String, now: Date) throws(QueryError) -> OrderQueryResult {
        let code = WeChatPayAPI.errorCode(response)
        switch response.status {
        case 200:
            try WeChatPayAPI.verify(response, configuration: configuration, now: now)
            let order: OrderEvidence
            do {
                order = try response.body.withUnsafeBufferPointer { body throws(Rejection) in
                    try WeChatPaySignature.transaction(json: UnsafeRawBufferPointer(body), channel: configuration.channelID, mchID: configuration.mchID, appID: configuration.appID)
                }
            } catch {
                throw .permanent(.malformedResponse, error.description)
            }
            guard order.outTradeNo == outTradeNo else { throw .permanent(.malformedResponse, "out_trade_no differs from the request") }
            return .found(order)
        case 404 where code == "ORDER_NOT_EXIST":
            try WeChatPayAPI.verifyStateAnswer(response, configuration: configuration, now: now, what: "not-found")
            return .notFound(outTradeNo: outTradeNo)
        default:
            throw WeChatPayAPI.failure(response, code: code)
        }
    }
}

/// What every WeChat Pay v3 API call shares: the signed `Authorization` header over the
/// exact target and body, the answer's signature check and the error classification.
/// Used by the query, prepay and close alike.
enum WeChatPayAPI {
    /// `{api_base_url}{target}` with `Authorization` signed by the merchant key over
    /// `METHOD\ntarget\ntimestamp\nnonce\nbody\n`. The signed target is the path without the
    /// base URL's own path. A body is sent as JSON.
    static func signedRequest(method: String, target: String, body: [UInt8], configuration: WeChatPayConfiguration,
                              now: Date, nonce: String) throws(QueryError) -> ChannelRequest {
        guard let key = configuration.merchantPrivateKey else {
            throw .permanent(.invalidRequest, "merchant_private_key_file is not configured")
        }
        var base = configuration.apiBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        let timestamp = String(Int64(now.timeIntervalSince1970.rounded(.down)))
        let message = SignedMessage.request(method: method, target: target, timestamp: timestamp, nonce: nonce, body: body)
        let signature = Data(key.signSHA256(message)).base64EncodedString()
        let authorization = "\(WeChatPaySignature.signatureType) mchid=\"\(configuration.mchID)\",nonce_str=\"\(nonce)\",signature=\"\(signature)\",timestamp=\"\(timestamp)\",serial_no=\"\(configuration.merchantSerialNo)\""
        var headers = [
            HeaderField(name: "Authorization", value: authorization),
            HeaderField(name: "Accept", value: "application/json"),
            HeaderField(name: "User-Agent", value: "payhook"),
        ]
        if method != "GET" { headers.append(HeaderField(name: "Content-Type", value: "application/json")) }
        return ChannelRequest(method: method, url: base + target, headers: headers, body: body)
    }

    /// Checks `Wechatpay-Timestamp/Nonce/Serial/Signature` over `ts\nnonce\nbody\n` with
    /// the platform key. An unknown key or bad signature is permanent; a stale timestamp
    /// transient (a fresh answer may pass).
    static func verify(_ response: ChannelResponse, configuration: WeChatPayConfiguration, now: Date) throws(QueryError) {
        do {
            try WeChatPaySignature.verify(
                headers: response.headers, body: response.body, keys: configuration.platformKeys,
                now: now, maxSkewSeconds: configuration.maxClockSkewSeconds)
        } catch {
            switch error.reason {
            case .unknownKey: throw .permanent(.unknownKey, error.description)
            case .staleTimestamp: throw .transient(.badSignature, error.description)
            default: throw .permanent(.badSignature, error.description)
            }
        }
    }

    /// For error answers that still decide a state (not found, already closed, paid): an
    /// unverified one is transient, so a retry can bring a signed answer.
    static func verifyStateAnswer(_ response: ChannelResponse, configuration: WeChatPayConfiguration, now: Date, what: String) throws(QueryError) {
        do { try verify(response, configuration: configuration, now: now) } catch {
            throw .transient(error.code, "unverified \(what) answer")
        }
    }

    /// The error answer's `code`, or empty.
    static func errorCode(_ response: ChannelResponse) -> String {
        response.body.withUnsafeBufferPointer { JSONObjectView($0)?["code"]?.string } ?? ""
    }

    /// 5xx, 429, `SYSTEM_ERROR` and `FREQUENCY_LIMITED` are transient; the rest permanent.
    /// The detail carries the status and the channel's code.
    static func failure(_ response: ChannelResponse, code: String) -> QueryError {
        let detail = "HTTP \(response.status) \(code.prefix(32))"
        if response.status >= 500 || response.status == 429 || code == "SYSTEM_ERROR" || code == "FREQUENCY_LIMITED" {
            return .transient(code.isEmpty ? .httpStatus : .channelError, detail)
        }
        return .permanent(code.isEmpty ? .httpStatus : .channelError, detail)
    }
}
