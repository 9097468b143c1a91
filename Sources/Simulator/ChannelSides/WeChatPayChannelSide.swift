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
            .init(key: "trade_type", value: .string(Self.tradeType(order.scene))),
            .init(key: "trade_state", value: .string(WeChatPaySignature.tradeState(order.status))),
            .init(key: "trade_state_desc", value: .string(order.status == .paid ? "支付成功" : "")),
            .init(key: "bank_type", value: .string("OTHERS")), .init(key: "attach", value: .string(order.attach ?? "")),
        ]
        if let paidAt = order.paidAt { members.append(.init(key: "success_time", value: .string(Timestamps.formatRFC3339China(paidAt)))) }
        members.append(.init(key: "payer", value: .object(["openid": .string(order.payerID ?? Self.payerOpenID)])))
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

    /// A refund object as WeChat Pay states it: in a notify's resource (`mchid`,
    /// `refund_status`) or in a query or call answer (`status`).
    func refundJSON(_ order: ChannelOrder, _ refund: SimulatedRefund, notify: Bool) -> JSONValue {
        var members: [JSONValue.Member] = []
        if notify { members.append(.init(key: "mchid", value: .string(mchID))) }
        members += [
            .init(key: "out_trade_no", value: .string(order.outTradeNo)),
            .init(key: "transaction_id", value: .string(order.channelTradeNo)),
            .init(key: "out_refund_no", value: .string(refund.refundNo)),
            .init(key: "refund_id", value: .string(refund.refundID)),
            .init(key: notify ? "refund_status" : "status", value: .string(Self.refundStatusText(refund.status))),
        ]
        if refund.status == .succeeded, let at = refund.refundedAt {
            members.append(.init(key: "success_time", value: .string(Timestamps.formatRFC3339China(at))))
        }
        members.append(.init(key: "user_received_account", value: .string("支付用户零钱")))
        members.append(.init(key: "amount", value: .object([
            .init(key: "total", value: .number(String(order.amountMinor))),
            .init(key: "refund", value: .number(String(refund.amountMinor))),
            .init(key: "payer_total", value: .number(String(order.amountMinor))),
            .init(key: "payer_refund", value: .number(String(refund.amountMinor))),
            .init(key: "currency", value: .string(order.currency)),
        ])))
        return .object(members)
    }

    static func refundStatusText(_ status: RefundStatus) -> String {
        switch status {
        case .succeeded: "SUCCESS"
        case .processing: "PROCESSING"
        case .abnormal: "ABNORMAL"
        case .closed, .failed: "CLOSED"
        }
    }

    /// A signed `REFUND.SUCCESS` / `REFUND.ABNORMAL` / `REFUND.CLOSED` notify.
    public func refundNotify(for order: ChannelOrder, refund: SimulatedRefund, eventID: String, timestamp: Date,
                             nonce: String = Nonce.random(32), resourceNonce: String = Nonce.random(12)) -> (headers: [HeaderField], body: [UInt8]) {
        let plaintext = Array(refundJSON(order, refund, notify: true).serialized().utf8)
        let ciphertext = WeChatPaySignature.encrypt(plaintext: plaintext, key: apiV3Key, nonce: resourceNonce, associatedData: "refund")
        let envelope = JSONValue.object([
            .init(key: "id", value: .string(eventID)),
            .init(key: "create_time", value: .string(Timestamps.formatRFC3339China(timestamp))),
            .init(key: "resource_type", value: .string("encrypt-resource")),
            .init(key: "event_type", value: .string("REFUND." + Self.refundStatusText(refund.status))),
            .init(key: "summary", value: .string("退款状态变更")),
            .init(key: "resource", value: .object([
                "original_type": .string("refund"), "algorithm": .string("AEAD_AES_256_GCM"),
                "ciphertext": .string(ciphertext), "associated_data": .string("refund"), "nonce": .string(resourceNonce),
            ])),
        ])
        let body = Array(envelope.serialized().utf8)
        return (signedHeaders(body: body, timestamp: timestamp, nonce: nonce) + [HeaderField(name: "Content-Type", value: "application/json")], body)
    }

    /// The out_refund_no a refund query asks for (`GET /v3/refund/domestic/refunds/{no}`), its signature checked.
    func readRefundQueryRequest(_ request: ReceivedRequest, now: Date) -> Result<String, ChannelResponseError> {
        let prefix = WeChatPayRefund.refundsPath + "/"
        guard request.method == "GET", request.path.hasPrefix(prefix),
            let decoded = FormEncoding.percentDecode(Array(request.path.dropFirst(prefix.count).utf8)),
            let refundNo = Bytes.utf8String(decoded), !refundNo.isEmpty
        else { return .failure(error(404, "NOT_FOUND", "no such resource", now: now)) }
        if let refusal = checkAuthorization(request, now: now) { return .failure(refusal) }
        return .success(refundNo)
    }

    /// The signed refund answer (nil: 404 RESOURCE_NOT_EXISTS).
    public func refundResponse(for found: (ChannelOrder, SimulatedRefund)?, now: Date) -> ChannelResponse {
        guard let (order, refund) = found else { return error(404, "RESOURCE_NOT_EXISTS", "退款单不存在", now: now).response }
        let body = Array(refundJSON(order, refund, notify: false).serialized().utf8)
        return .signedJSON(status: 200, body: body, signedHeaders: signedHeaders(body: body, timestamp: now))
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

    /// The simulated buyer's openid when the order names none (every scene but jsapi).
    public static let payerOpenID = "oSimulatedOpenID000000000000"

    /// `trade_type` as WeChat Pay states it for the scene (JSAPI for orders put in the books directly).
    static func tradeType(_ scene: PaymentScene?) -> String {
        switch scene {
        case .native: "NATIVE"
        case .app: "APP"
        case .h5: "MWEB"
        default: "JSAPI"
        }
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
        if let refusal = checkAuthorization(request, now: now) { return .failure(refusal) }
        return .success(outTradeNo)
    }

    /// WeChat Pay's 401 `SIGN_ERROR` when the `Authorization` header does not carry the
    /// merchant's signature of this request (nil: signed, or ``merchantPublicKey`` unset).
    func checkAuthorization(_ request: ReceivedRequest, now: Date) -> ChannelResponseError? {
        guard let merchantPublicKey else { return nil }
        guard let header = request.headers.first(named: "Authorization"),
            let fields = WeChatPaySignature.parseAuthorization(header),
            fields["mchid"] == mchID, let nonce = fields["nonce_str"], let timestamp = fields["timestamp"],
            let signatureText = fields["signature"], let signature = Data(base64Encoded: signatureText)
        else { return error(401, "SIGN_ERROR", "Authorization", now: now) }
        let target = request.query.isEmpty ? request.path : request.path + "?" + request.query
        let message = SignedMessage.request(method: request.method, target: target, timestamp: timestamp, nonce: nonce, body: request.body)
        guard merchantPublicKey.isValidSHA256Signature(Array(signature), for: message) else {
            return error(401, "SIGN_ERROR", "signature", now: now)
        }
        return nil
    }

    /// A prepay call (`POST /v3/pay/transactions/{native|jsapi|app|h5}`), its signature and
    /// fields checked; or WeChat Pay's refusal (401 SIGN_ERROR, 400 PARAM_ERROR).
    func readPrepayRequest(_ request: ReceivedRequest, scene: PaymentScene, now: Date) -> Result<WeChatPrepay, ChannelResponseError> {
        if let refusal = checkAuthorization(request, now: now) { return .failure(refusal) }
        guard let json = try? JSONValue.parse(request.body), case .object = json else {
            return .failure(error(400, "PARAM_ERROR", "body is not a JSON object", now: now))
        }
        func field(_ name: String) -> String? { json[name]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
        guard let appid = field("appid"), let mchid = field("mchid") else {
            return .failure(error(400, "PARAM_ERROR", "appid and mchid are required", now: now))
        }
        guard appid == appID, mchid == mchID else { return .failure(error(400, "APPID_MCHID_NOT_MATCH", "appid and mchid do not match", now: now)) }
        guard let description = field("description") else { return .failure(error(400, "PARAM_ERROR", "description", now: now)) }
        guard let outTradeNo = field("out_trade_no"), OrderRules.outTradeNoProblem(outTradeNo, type: .wechatpayV3) == nil else {
            return .failure(error(400, "PARAM_ERROR", "out_trade_no", now: now))
        }
        guard let notifyURL = field("notify_url"), notifyURL.hasPrefix("http") else {
            return .failure(error(400, "PARAM_ERROR", "notify_url", now: now))
        }
        guard let total = json["amount"]?["total"]?.int64Value, OrderRules.amountRange(type: .wechatpayV3).contains(total) else {
            return .failure(error(400, "PARAM_ERROR", "amount.total", now: now))
        }
        let currency = json["amount"]?["currency"]?.stringValue ?? "CNY"
        guard currency == "CNY" else { return .failure(error(400, "PARAM_ERROR", "amount.currency", now: now)) }
        if let expire = field("time_expire"), Timestamps.parseRFC3339(expire) == nil {
            return .failure(error(400, "PARAM_ERROR", "time_expire", now: now))
        }
        var openid: String?
        switch scene {
        case .jsapi:
            guard let id = json["payer"]?["openid"]?.stringValue, !id.isEmpty else {
                return .failure(error(400, "PARAM_ERROR", "payer.openid", now: now))
            }
            openid = id
        case .h5:
            guard json["scene_info"]?["payer_client_ip"]?.stringValue?.isEmpty == false,
                json["scene_info"]?["h5_info"]?["type"]?.stringValue?.isEmpty == false
            else { return .failure(error(400, "PARAM_ERROR", "scene_info", now: now)) }
        default: break
        }
        return .success(WeChatPrepay(scene: scene, outTradeNo: outTradeNo, description: description, notifyURL: notifyURL,
                                     amountMinor: total, currency: currency, attach: field("attach"), openid: openid,
                                     body: request.body))
    }

    /// The out_trade_no of a close call (`POST /v3/pay/transactions/out-trade-no/{no}/close`,
    /// body `{"mchid":…}`), its signature checked; or WeChat Pay's refusal.
    func readCloseRequest(_ request: ReceivedRequest, now: Date) -> Result<String, ChannelResponseError> {
        let prefix = "/v3/pay/transactions/out-trade-no/", suffix = "/close"
        guard request.method == "POST", request.path.hasPrefix(prefix), request.path.hasSuffix(suffix),
            let decoded = FormEncoding.percentDecode(Array(request.path.dropFirst(prefix.count).dropLast(suffix.count).utf8)),
            let outTradeNo = Bytes.utf8String(decoded), !outTradeNo.isEmpty
        else { return .failure(error(404, "NOT_FOUND", "no such resource", now: now)) }
        if let refusal = checkAuthorization(request, now: now) { return .failure(refusal) }
        guard let json = try? JSONValue.parse(request.body), let mchid = json["mchid"]?.stringValue else {
            return .failure(error(400, "PARAM_ERROR", "mchid is required", now: now))
        }
        guard mchid == mchID else { return .failure(error(400, "MCH_NOT_EXISTS", "mchid", now: now)) }
        return .success(outTradeNo)
    }

    /// A signed 200 answer with one string member (`code_url`, `prepay_id`, `h5_url`).
    func prepayResponse(key: String, value: String, now: Date) -> ChannelResponse {
        let body = Array(JSONValue.object([.init(key: key, value: .string(value))]).serialized().utf8)
        return .signedJSON(status: 200, body: body, signedHeaders: signedHeaders(body: body, timestamp: now))
    }

    /// A close's 204 No Content, its signature headers over the empty body.
    func closedResponse(now: Date) -> ChannelResponse {
        ChannelResponse(status: 204, headers: signedHeaders(body: [], timestamp: now), body: [])
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

    func error(_ status: Int, _ code: String, _ message: String, now: Date) -> ChannelResponseError {
        ChannelResponse.signedJSONError(status: status, code: code, message: message) { signedHeaders(body: $0, timestamp: now) }
    }
}

/// A prepay call WeChat Pay has read and whose signature it checked.
struct WeChatPrepay {
    var scene: PaymentScene
    var outTradeNo: String
    var description: String
    var notifyURL: String
    var amountMinor: Int64
    var currency: String
    var attach: String?
    var openid: String?
    /// The body as sent: a repeat with other bytes is a conflict.
    var body: [UInt8]
}
