public import Channels
public import PayhookCore
public import Foundation

/// WeChat Pay's side, for the simulator and tests: signs notifies (resource encrypted),
/// and answers order queries as WeChat Pay does, with keys the caller supplies.
public struct WeChatPayChannelSide: Sendable {
    /// The platform key it signs with and the name sent in `Wechatpay-Serial`
    /// (a certificate serial or a `PUB_KEY_ID_…`).
    public var signingKey: RSAPrivateKey
    public var signingSerial: String
    public var apiV3Key: Channels.SharedSecret
    /// The merchant's public key, to check query requests' `Authorization`; nil skips the check.
    public var merchantPublicKey: RSAPublicKey?
    public var mchID: String
    public var appID: String

    public init(signingKey: RSAPrivateKey, signingSerial: String, apiV3Key: Channels.SharedSecret, merchantPublicKey: RSAPublicKey?, mchID: String, appID: String) {
        self.signingKey = signingKey
        self.signingSerial = signingSerial
        self.apiV3Key = apiV3Key
        self.merchantPublicKey = merchantPublicKey
        self.mchID = mchID
        self.appID = appID
    }

    func transactionJSON(_ order: ChannelOrder) -> JSONValue {
        var members: [JSONValue.Member] = [
            .init(key: "mchid", value: .string(mchID)), .init(key: "appid", value: .string(appID)),
            .init(key: "out_trade_no", value: .string(order.outTradeNo)),
            .init(key: "transaction_id", value: .string(order.channelTradeNo)),
            .init(key: "trade_type", value: .string("JSAPI")),
            .init(key: "trade_state", value: .string(WeChatPaySignature.tradeState(order.status))),
            .init(key: "trade_state_desc", value: .string(order.status == .paid ? "支付成功" : "")),
            .init(key: "bank_type", value: .string("OTHERS")), .init(key: "attach", value: .string("")),
        ]
        if let paidAt = order.paidAt { members.append(.init(key: "success_time", value: .string(Timestamps.formatRFC3339China(paidAt)))) }
        members.append(.init(key: "payer", value: .object(["openid": .string("oSimulatedOpenID000000000000")])))
        members.append(.init(key: "amount", value: .object([
            "total": .number(String(order.amountMinor)), "payer_total": .number(String(order.amountMinor)),
            "currency": .string(order.currency), "payer_currency": .string(order.currency),
        ])))
        return .object(members)
    }

    /// A signed notify: headers (`Wechatpay-*`, `Content-Type`) and the JSON body.
    public func notify(
        for order: ChannelOrder, eventID: String, timestamp: Date, nonce: String = Nonce.random(32),
        resourceNonce: String = Nonce.random(12)
    ) -> (headers: [HeaderField], body: [UInt8]) {
        let plaintext = Array(transactionJSON(order).serialized().utf8)
        let ciphertext = WeChatPaySignature.encrypt(plaintext: plaintext, key: apiV3Key, nonce: resourceNonce, associatedData: "transaction")
        let paid = order.status == .paid
        let envelope = JSONValue.object([
            "id": .string(eventID), "create_time": .string(Timestamps.formatRFC3339China(timestamp)),
            "resource_type": .string("encrypt-resource"),
            "event_type": .string(paid ? "TRANSACTION.SUCCESS" : "TRANSACTION.\(WeChatPaySignature.tradeState(order.status))"),
            "summary": .string(paid ? "支付成功" : "交易状态变更"),
            "resource": .object([
                "original_type": .string("transaction"), "algorithm": .string("AEAD_AES_256_GCM"),
                "ciphertext": .string(ciphertext), "associated_data": .string("transaction"), "nonce": .string(resourceNonce),
            ]),
        ])
        let body = Array(envelope.serialized().utf8)
        return (signedHeaders(body: body, timestamp: timestamp, nonce: nonce) + [HeaderField(name: "Content-Type", value: "application/json")], body)
    }

    /// `Wechatpay-*` headers signing `body` at `timestamp`.
    public func signedHeaders(body: [UInt8], timestamp: Date, nonce: String = Nonce.random(32)) -> [HeaderField] {
        let ts = String(Int64(timestamp.timeIntervalSince1970.rounded(.down)))
        let signature = Data(signingKey.signSHA256(SignedMessage.answer(timestamp: ts, nonce: nonce, body: body))).base64EncodedString()
        return [
            HeaderField(name: "Wechatpay-Timestamp", value: ts), HeaderField(name: "Wechatpay-Nonce", value: nonce),
            HeaderField(name: "Wechatpay-Signature", value: signature), HeaderField(name: "Wechatpay-Serial", value: signingSerial),
            HeaderField(name: "Wechatpay-Signature-Type", value: WeChatPaySignature.signatureType),
        ]
    }

    /// The out_trade_no a query asks for, after checking path, `mchid`, and the
    /// `Authorization` signature (when ``merchantPublicKey`` is set); or WeChat's error answer.
    public func readQueryRequest(_ request: ReceivedRequest, now: Date) -> Result<String, ChannelResponseError> {
        let prefix = "/v3/pay/transactions/out-trade-no/"
        guard request.method == "GET", request.path.hasPrefix(prefix),
            let decoded = FormEncoding.percentDecode(Array(request.path.dropFirst(prefix.count).utf8)),
            let outTradeNo = Bytes.utf8String(decoded), !outTradeNo.isEmpty
        else { return .failure(error(404, "NOT_FOUND", "no such resource", now: now)) }
        let query = FormEncoding.parse(request.query) ?? []
        guard query.first(where: { $0.key == "mchid" })?.value == Array(mchID.utf8) else {
            return .failure(error(400, "PARAM_ERROR", "mchid", now: now))
        }
        if let merchantPublicKey {
            guard let header = request.headers.first(named: "Authorization"),
                let fields = WeChatPaySignature.parseAuthorization(header),
                fields["mchid"] == mchID, let nonce = fields["nonce_str"], let timestamp = fields["timestamp"],
                let signatureText = fields["signature"], let signature = Data(base64Encoded: signatureText)
            else { return .failure(error(401, "SIGN_ERROR", "Authorization", now: now)) }
            let target = request.query.isEmpty ? request.path : request.path + "?" + request.query
            let message = SignedMessage.request(method: request.method, target: target, timestamp: timestamp, nonce: nonce, body: request.body)
            guard merchantPublicKey.isValidSHA256Signature(Array(signature), for: message) else {
                return .failure(error(401, "SIGN_ERROR", "signature", now: now))
            }
        }
        return .success(outTradeNo)
    }

    /// The signed answer for an order (nil: 404 ORDER_NOT_EXIST). The bytes depend only on
    /// the arguments; callers may memoize them per order state for less than the skew limit.
    public func queryResponse(for order: ChannelOrder?, outTradeNo: String, now: Date) -> ChannelResponse {
        guard let order else { return error(404, "ORDER_NOT_EXIST", "订单不存在", now: now).response }
        let body = Array(transactionJSON(order).serialized().utf8)
        return .signedJSON(status: 200, body: body, signedHeaders: signedHeaders(body: body, timestamp: now))
    }

    public func answerQuery(_ request: ReceivedRequest, now: Date, lookup: (String) -> ChannelOrder?) -> ChannelResponse {
        readQueryRequest(request, now: now).answer { queryResponse(for: lookup($0), outTradeNo: $0, now: now) }
    }

    private func error(_ status: Int, _ code: String, _ message: String, now: Date) -> ChannelResponseError {
        ChannelResponse.signedJSONError(status: status, code: code, message: message) { signedHeaders(body: $0, timestamp: now) }
    }
}
