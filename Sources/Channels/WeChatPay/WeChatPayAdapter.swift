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

    public func verify(_ raw: RawCallback) throws(Rejection) -> PaymentNotification {
        try checkSource(raw)
        guard raw.kind == .notify else { throw Rejection(.unsupportedKind, "WeChat Pay sends no browser return") }
        try WeChatPaySignature.verify(
            headers: raw.headers, body: raw.body, keys: configuration.platformKeys,
            now: raw.receivedAt, maxSkewSeconds: configuration.maxClockSkewSeconds)
        let (eventID, plaintext) = try raw.body.withUnsafeBufferPointer { body throws(Rejection) in
            guard let envelope = JSONObjectView(body) else { throw .malformed("body is not a JSON object") }
            guard let resource = envelope["resource"]?.object else { throw .malformed("resource missing or not an object") }
            return (envelope["id"]?.string, try WeChatPaySignature.decrypt(resource: resource, key: configuration.apiV3Key))
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
        guard let key = configuration.merchantPrivateKey else {
            throw .permanent(.invalidRequest, "merchant_private_key_file is not configured")
        }
        var base = configuration.apiBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        let target = path(outTradeNo: outTradeNo) + "?mchid=" + FormEncoding.encodePathSegment(configuration.mchID)
        let timestamp = String(Int64(now.timeIntervalSince1970.rounded(.down)))
        let message = SignedMessage.request(method: "GET", target: target, timestamp: timestamp, nonce: nonce, body: [])
        let signature = Data(key.signSHA256(message)).base64EncodedString()
        let authorization = "\(WeChatPaySignature.signatureType) mchid=\"\(configuration.mchID)\",nonce_str=\"\(nonce)\",signature=\"\(signature)\",timestamp=\"\(timestamp)\",serial_no=\"\(configuration.merchantSerialNo)\""
        return ChannelRequest(
            method: "GET", url: base + target,
            headers: [
                HeaderField(name: "Authorization", value: authorization),
                HeaderField(name: "Accept", value: "application/json"),
                HeaderField(name: "User-Agent", value: "payhook"),
            ],
            body: []
        )
    }

    /// 200 → the verified transaction; 404 `ORDER_NOT_EXIST` (verified) → not found;
    /// 5xx, 429 and `SYSTEM_ERROR`/`FREQUENCY_LIMITED` → transient; other answers permanent.
    public static func interpret(_ response: ChannelResponse, configuration: WeChatPayConfiguration, outTradeNo: String, now: Date) throws(QueryError) -> OrderQueryResult {
        func verified() throws(QueryError) {
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
        let code = response.body.withUnsafeBufferPointer { JSONObjectView($0)?["code"]?.string } ?? ""
        switch response.status {
        case 200:
            try verified()
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
            do { try verified() } catch { throw .transient(error.code, "unverified not-found answer") }
            return .notFound(outTradeNo: outTradeNo)
        default:
            let detail = "HTTP \(response.status) \(code.prefix(32))"
            if response.status >= 500 || response.status == 429 || code == "SYSTEM_ERROR" || code == "FREQUENCY_LIMITED" {
                throw .transient(code.isEmpty ? .httpStatus : .channelError, detail)
            }
            throw .permanent(code.isEmpty ? .httpStatus : .channelError, detail)
        }
    }
}
