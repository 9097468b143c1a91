public import Foundation
public import PayhookCore

/// WeChat Pay v3 prepay and close: pure builders and readers, signed and verified as the
/// query is (`WeChatPayAPI`). Every scene is a server call; jsapi and app then sign the
/// front end's parameters with the merchant key.
public enum WeChatPayOrderCreation {
    /// `/v3/pay/transactions/{native|jsapi|app|h5}`.
    public static func prepayPath(_ scene: PaymentScene) -> String {
        "/v3/pay/transactions/" + scene.rawValue
    }

    public static func closePath(outTradeNo: String) -> String {
        WeChatPayQuery.path(outTradeNo: outTradeNo) + "/close"
    }

    /// The prepay call. jsapi needs `payer.openid`, h5 `payer.clientIP`; other channel
    /// types' scenes are refused. All permanent: retrying the same order cannot help.
    public static func step(_ order: ChannelOrderRequest, configuration: WeChatPayConfiguration, now: Date, nonce: String) throws(QueryError) -> CreationStep {
        let body = Array(try prepayBody(order, configuration: configuration).serialized().utf8)
        return .call(try WeChatPayAPI.signedRequest(
            method: "POST", target: prepayPath(order.scene), body: body, configuration: configuration, now: now, nonce: nonce))
    }

    /// The prepay answer, its signature verified: native → `code_url`; h5 → `h5_url`;
    /// jsapi → `appId timeStamp nonceStr package signType paySign`; app → `appid partnerid
    /// prepayid package noncestr timestamp sign` (both signed with the merchant key,
    /// `timeStamp` from `now`, the nonce from `nonce`).
    public static func result(_ response: ChannelResponse, order: ChannelOrderRequest, configuration: WeChatPayConfiguration, now: Date, nonce: String) throws(QueryError) -> CreationResult {
        try order.check(for: .wechatpayV3)
        guard response.status == 200 else { throw WeChatPayAPI.failure(response, code: WeChatPayAPI.errorCode(response)) }
        try WeChatPayAPI.verify(response, configuration: configuration, now: now)
        guard let answer = try? JSONValue.parse(response.body), case .object = answer else {
            throw .permanent(.malformedResponse, "not a JSON object")
        }
        func field(_ name: String) throws(QueryError) -> String {
            guard let value = answer[name]?.stringValue, !value.isEmpty else { throw .permanent(.malformedResponse, name) }
            return value
        }
        switch order.scene {
        case .native: return .created(FrontEndParameters([.init("code_url", try field("code_url"))]))
        case .h5: return .created(FrontEndParameters([.init("h5_url", try field("h5_url"))]))
        case .jsapi:
            let package = try "prepay_id=" + field("prepay_id")
            let timeStamp = unixSeconds(now)
            let paySign = try sign([configuration.appID, timeStamp, nonce, package], configuration: configuration)
            return .created(FrontEndParameters([
                .init("appId", configuration.appID), .init("timeStamp", timeStamp), .init("nonceStr", nonce),
                .init("package", package), .init("signType", "RSA"), .init("paySign", paySign),
            ]))
        case .app:
            let prepayID = try field("prepay_id")
            let timestamp = unixSeconds(now)
            // The raw prepay_id is signed here, not `prepay_id=...` as for jsapi.
            let appSign = try sign([configuration.appID, timestamp, nonce, prepayID], configuration: configuration)
            return .created(FrontEndParameters([
                .init("appid", configuration.appID), .init("partnerid", configuration.mchID), .init("prepayid", prepayID),
                .init("package", "Sign=WXPay"), .init("noncestr", nonce), .init("timestamp", timestamp), .init("sign", appSign),
            ]))
        case .page, .wap, .qr, .deduct:
            throw .permanent(.invalidRequest, "scene \(order.scene.rawValue) is not a WeChat Pay scene")
        }
    }

    /// `POST .../out-trade-no/{no}/close` with body `{"mchid":..}`.
    public static func closeRequest(outTradeNo: String, configuration: WeChatPayConfiguration, now: Date, nonce: String) throws(QueryError) -> ChannelRequest {
        let body = Array(JSONValue.object(["mchid": .string(configuration.mchID)]).serialized().utf8)
        return try WeChatPayAPI.signedRequest(
            method: "POST", target: closePath(outTradeNo: outTradeNo), body: body, configuration: configuration, now: now, nonce: nonce)
    }

    /// 204 (signed over the empty body) or `ORDER_CLOSED` → closed; `ORDER_PAID` and
    /// `USER_PAYING` (202) → not closable; 404 `ORDER_NOT_EXIST` → not found. Answers that
    /// decide a state need a valid signature (unverified → transient); other errors as the query.
    public static func closeResult(_ response: ChannelResponse, outTradeNo: String, configuration: WeChatPayConfiguration, now: Date) throws(QueryError) -> CloseResult {
        if response.status == 204 {
            try WeChatPayAPI.verify(response, configuration: configuration, now: now)
            return .closed
        }
        let code = WeChatPayAPI.errorCode(response)
        let result: CloseResult
        switch (response.status, code) {
        case (400..<500, "ORDER_CLOSED"): result = .closed
        case (400..<500, "ORDER_PAID"), (202, "USER_PAYING"), (400..<500, "USER_PAYING"): result = .notClosable(code)
        case (202, _): result = .notClosable("USER_PAYING")
        case (404, "ORDER_NOT_EXIST"): result = .notFound
        default: throw WeChatPayAPI.failure(response, code: code)
        }
        try WeChatPayAPI.verifyStateAnswer(response, configuration: configuration, now: now, what: code.isEmpty ? "close" : code)
        return result
    }

    /// The prepay body in the wire spec's key order: appid, mchid, description,
    /// out_trade_no, time_expire?, attach?, notify_url, amount, then payer (jsapi) or
    /// scene_info (h5).
    static func prepayBody(_ order: ChannelOrderRequest, configuration: WeChatPayConfiguration) throws(QueryError) -> JSONValue {
        try order.check(for: .wechatpayV3)
        var members: [JSONValue.Member] = [
            .init(key: "appid", value: .string(configuration.appID)),
            .init(key: "mchid", value: .string(configuration.mchID)),
            .init(key: "description", value: .string(order.subject)),
            .init(key: "out_trade_no", value: .string(order.outTradeNo)),
        ]
        if let expiresAt = order.expiresAt {
            members.append(.init(key: "time_expire", value: .string(Timestamps.formatRFC3339China(expiresAt))))
        }
        if let attach = order.attach, !attach.isEmpty { members.append(.init(key: "attach", value: .string(attach))) }
        members.append(.init(key: "notify_url", value: .string(order.notifyURL)))
        // Fen as a JSON integer; never through floating point.
        members.append(.init(key: "amount", value: .object([
            "total": .number(String(order.amountMinor)), "currency": .string(order.currency),
        ])))
        switch order.scene {
        case .jsapi:
            guard let openid = order.payer.openid, !openid.isEmpty else {
                throw .permanent(.invalidRequest, "scene jsapi needs payer.openid")
            }
            members.append(.init(key: "payer", value: .object(["openid": .string(openid)])))
        case .h5:
            guard let clientIP = order.payer.clientIP, !clientIP.isEmpty else {
                throw .permanent(.invalidRequest, "scene h5 needs payer.client_ip")
            }
            let type = order.payer.h5Type.flatMap { $0.isEmpty ? nil : $0 } ?? "Wap"
            members.append(.init(key: "scene_info", value: .object([
                "payer_client_ip": .string(clientIP), "h5_info": .object(["type": .string(type)]),
            ])))
        default: break
        }
        return .object(members)
    }

    static func unixSeconds(_ date: Date) -> String {
        String(Int64(date.timeIntervalSince1970.rounded(.down)))
    }

    /// base64 RSA-SHA256 with the merchant key over the lines, each ending in `\n`.
    static func sign(_ lines: [String], configuration: WeChatPayConfiguration) throws(QueryError) -> String {
        guard let key = configuration.merchantPrivateKey else {
            throw .permanent(.invalidRequest, "merchant_private_key_file is not configured")
        }
        let message = Array(lines.map { $0 + "\n" }.joined().utf8)
        return Data(key.signSHA256(message)).base64EncodedString()
    }
}
