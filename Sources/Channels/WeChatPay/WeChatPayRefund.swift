public import PayhookCore
public import Foundation

/// WeChat Pay v3 domestic refunds: the `REFUND.*` notify's resource, the refund call
/// (`POST /v3/refund/domestic/refunds`) and the refund query
/// (`GET /v3/refund/domestic/refunds/{out_refund_no}`). Pure; signed and verified as the
/// order query is (`WeChatPayAPI`).
public enum WeChatPayRefund {
    public static let refundsPath = "/v3/refund/domestic/refunds"

    public static func queryPath(refundNo: String) -> String {
        refundsPath + "/" + FormEncoding.encodePathSegment(refundNo)
    }

    /// `SUCCESS`, `PROCESSING`, `ABNORMAL`, `CLOSED`; nil for anything else.
    static func status(_ text: String?) -> RefundStatus? {
        switch text {
        case "SUCCESS": .succeeded
        case "PROCESSING": .processing
        case "ABNORMAL": .abnormal
        case "CLOSED": .closed
        default: nil
        }
    }

    /// A refund object: the decrypted notify resource (`refund_status`, `mchid`) or the
    /// query and call answer (`status`, no `mchid`). A `mchid` other than ours is refused.
    static func refund(_ json: JSONObjectView, configuration: WeChatPayConfiguration) throws(Rejection) -> (OrderEvidence, RefundEvidence) {
        if let mchid = json["mchid"], !mchid.isString(configuration.mchID) { throw Rejection(.merchantMismatch, "mchid") }
        guard let outTradeNo = json["out_trade_no"]?.string, !outTradeNo.isEmpty else { throw .malformed("out_trade_no") }
        guard let refundNo = json["out_refund_no"]?.string, !refundNo.isEmpty else { throw .malformed("out_refund_no") }
        guard let status = status(json["refund_status"]?.string ?? json["status"]?.string) else {
            throw .malformed("refund_status")
        }
        guard let amount = json["amount"]?.object, let total = amount["total"]?.int64, total >= 0,
              let refunded = amount["refund"]?.int64, refunded > 0 else { throw .malformed("amount") }
        let currency = amount["currency"]?.string ?? "CNY"
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { throw .malformed("amount.currency") }
        var refundedAt: Date?
        if let time = json["success_time"], time.isString {
            guard let date = time.withStringBytes(Timestamps.parseRFC3339) ?? nil else { throw .malformed("success_time") }
            refundedAt = date
        }
        let tradeNo = json["transaction_id"]?.string
        let order = OrderEvidence(
            channel: configuration.channelID, outTradeNo: outTradeNo, channelTradeNo: tradeNo, status: .other("REFUND"),
            amountMinor: total, currency: currency, merchant: MerchantIdentity(appID: nil, merchantID: configuration.mchID),
            paidAt: nil)
        let refund = RefundEvidence(
            channel: configuration.channelID, outTradeNo: outTradeNo, channelTradeNo: tradeNo, refundNo: refundNo,
            channelRefundID: json["refund_id"]?.string, status: status, amountMinor: refunded, currency: currency,
            refundedAt: refundedAt)
        return (order, refund)
    }

    static func refund(bytes: [UInt8], configuration: WeChatPayConfiguration) throws(Rejection) -> (OrderEvidence, RefundEvidence) {
        try bytes.withUnsafeBufferPointer { raw throws(Rejection) in
            guard let json = JSONObjectView(raw) else { throw .malformed("refund is not a JSON object") }
            return try refund(json, configuration: configuration)
        }
    }

    /// The refund call; body keys in the wire spec's order.
    public static func refundRequest(_ refund: ChannelRefundRequest, configuration: WeChatPayConfiguration, now: Date,
                                     nonce: String) throws(QueryError) -> ChannelRequest {
        var members: [JSONValue.Member] = [
            .init(key: "out_trade_no", value: .string(refund.outTradeNo)),
            .init(key: "out_refund_no", value: .string(refund.refundNo)),
        ]
        if let reason = refund.reason, !reason.isEmpty { members.append(.init(key: "reason", value: .string(reason))) }
        if let notifyURL = refund.notifyURL { members.append(.init(key: "notify_url", value: .string(notifyURL))) }
        // Fen as JSON integers; never through floating point.
        members.append(.init(key: "amount", value: .object([
            .init(key: "refund", value: .number(String(refund.amountMinor))),
            .init(key: "total", value: .number(String(refund.orderAmountMinor))),
            .init(key: "currency", value: .string(refund.currency)),
        ])))
        return try WeChatPayAPI.signedRequest(method: "POST", target: refundsPath,
                                              body: Array(JSONValue.object(members).serialized().utf8),
                                              configuration: configuration, now: now, nonce: nonce)
    }

    /// 200 → the verified refund (its status as WeChat Pay states it); errors as the query's.
    public static func refundResult(_ response: ChannelResponse, refund: ChannelRefundRequest, configuration: WeChatPayConfiguration,
                                    now: Date) throws(QueryError) -> RefundEvidence {
        guard response.status == 200 else { throw WeChatPayAPI.failure(response, code: WeChatPayAPI.errorCode(response)) }
        return try verified(response, outTradeNo: refund.outTradeNo, refundNo: refund.refundNo,
                            configuration: configuration, now: now)
    }

    public static func queryRequest(refundNo: String, configuration: WeChatPayConfiguration, now: Date,
                                    nonce: String) throws(QueryError) -> ChannelRequest {
        try WeChatPayAPI.signedRequest(method: "GET", target: queryPath(refundNo: refundNo), body: [],
                                       configuration: configuration, now: now, nonce: nonce)
    }

    /// 200 → the refund; 404 `RESOURCE_NOT_EXISTS` (verified) → not found.
    public static func queryResult(_ response: ChannelResponse, outTradeNo: String, refundNo: String,
                                   configuration: WeChatPayConfiguration, now: Date) throws(QueryError) -> RefundQueryResult {
        let code = WeChatPayAPI.errorCode(response)
        switch response.status {
        case 200:
            return .found(try verified(response, outTradeNo: outTradeNo, refundNo: refundNo, configuration: configuration, now: now))
        case 404 where code == "RESOURCE_NOT_EXISTS" || code == "NOT_FOUND":
            try WeChatPayAPI.verifyStateAnswer(response, configuration: configuration, now: now, what: "not-found")
            return .notFound
        default:
            throw WeChatPayAPI.failure(response, code: code)
        }
    }

    private static func verified(_ response: ChannelResponse, outTradeNo: String, refundNo: String,
                                 configuration: WeChatPayConfiguration, now: Date) throws(QueryError) -> RefundEvidence {
        try WeChatPayAPI.verify(response, configuration: configuration, now: now)
        let refund: RefundEvidence
        do { refund = try Self.refund(bytes: response.body, configuration: configuration).1 } catch {
            throw .permanent(.malformedResponse, error.description)
        }
        guard refund.outTradeNo == outTradeNo, refund.refundNo == refundNo else {
            throw .permanent(.malformedResponse, "out_trade_no or out_refund_no differs from the request")
        }
        return refund
    }
}
