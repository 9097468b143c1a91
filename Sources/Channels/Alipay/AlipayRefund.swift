public import PayhookCore
public import Foundation

/// Alipay refunds: reading the refund in a `trade_status_sync` notify, the refund call
/// (`alipay.trade.refund`, synchronous) and the refund query
/// (`alipay.trade.fastpay.refund.query`). Pure; signed and verified as the order query is.
public enum AlipayRefund {
    public static let refundMethod = "alipay.trade.refund"
    public static let queryMethod = "alipay.trade.fastpay.refund.query"

    /// The refund a verified notify reports, or nil for a payment notify. A refund notify
    /// carries `refund_fee` (the order's refunded total) or `gmt_refund`, and `out_biz_no`
    /// (the refund's `out_request_no`); a partial one says `TRADE_SUCCESS`, a full one
    /// `TRADE_CLOSED`. Without `out_biz_no` the refund is the one Alipay files under the
    /// order number (its default `out_request_no`).
    static func notice(_ fields: DecodedForm, evidence: OrderEvidence) throws(Rejection) -> RefundEvidence? {
        let feeText = fields.value("refund_fee")
        let timeText = fields.ascii("gmt_refund")
        guard feeText != nil || timeText != nil else { return nil }
        guard let feeText, let total = feeText.withUnsafeBufferPointer({ Money.parseMinorUnits(utf8: $0) }) else {
            throw .malformed("refund_fee")
        }
        var refundedAt: Date?
        if let timeText {
            // Alipay states gmt_refund with milliseconds at times (`2026-11-27 10:00:05.123`).
            guard let date = Timestamps.parseAlipay(String(timeText.prefix(19))) else { throw .malformed("gmt_refund") }
            refundedAt = date
        }
        let refundNo = fields.ascii("out_biz_no") ?? evidence.outTradeNo
        return RefundEvidence(
            channel: evidence.channel, outTradeNo: evidence.outTradeNo, channelTradeNo: evidence.channelTradeNo,
            refundNo: refundNo, channelRefundID: nil, status: .succeeded, amountMinor: nil, totalRefundedMinor: total,
            currency: evidence.currency, refundedAt: refundedAt)
    }

    /// `alipay.trade.refund {out_trade_no, refund_amount, out_request_no, refund_reason?}`.
    public static func refundRequest(_ refund: ChannelRefundRequest, configuration: AlipayConfiguration, now: Date) throws(QueryError) -> ChannelRequest {
        var members: [JSONValue.Member] = [
            .init(key: "out_trade_no", value: .string(refund.outTradeNo)),
            .init(key: "refund_amount", value: .string(Money.format(minorUnits: refund.amountMinor))),
            .init(key: "out_request_no", value: .string(refund.refundNo)),
        ]
        if let reason = refund.reason, !reason.isEmpty { members.append(.init(key: "refund_reason", value: .string(reason))) }
        let pairs = try AlipayGateway.signedParameters(method: refundMethod, bizContent: .object(members),
                                                       configuration: configuration, now: now)
        return AlipayGateway.post(pairs, configuration: configuration)
    }

    /// `10000` with `fund_change: Y` → succeeded; `N` → processing (money did not move in
    /// this call: a repeat, or not yet; the query decides). Business errors are permanent
    /// (`failed` at the caller), `ACQ.SYSTEM_ERROR`, 5xx and the like transient (unknown).
    public static func refundResult(_ response: ChannelResponse, refund: ChannelRefundRequest,
                                    configuration: AlipayConfiguration) throws(QueryError) -> RefundEvidence {
        let answer = try AlipayGateway.answer(response, node: AlipayGateway.responseNode(method: refundMethod),
                                              configuration: configuration)
        guard answer.code == "10000" else { throw AlipayGateway.failure(answer) }
        guard answer.verified else { throw .permanent(.badSignature, "unsigned refund response") }
        guard answer.body["out_trade_no"]?.stringValue == refund.outTradeNo else {
            throw .permanent(.malformedResponse, "out_trade_no differs from the request")
        }
        let total = answer.body["refund_fee"]?.stringValue.flatMap { Money.parseMinorUnits($0) }
        let moved = answer.body["fund_change"]?.stringValue == "Y"
        return RefundEvidence(
            channel: configuration.channelID, outTradeNo: refund.outTradeNo,
            channelTradeNo: answer.body["trade_no"]?.stringValue, refundNo: refund.refundNo, channelRefundID: nil,
            status: moved ? .succeeded : .processing, amountMinor: refund.amountMinor, totalRefundedMinor: total,
            currency: refund.currency,
            refundedAt: answer.body["gmt_refund_pay"]?.stringValue.flatMap { Timestamps.parseAlipay(String($0.prefix(19))) })
    }

    /// `alipay.trade.fastpay.refund.query {out_trade_no, out_request_no}`, asking for `gmt_refund_pay`.
    public static func queryRequest(outTradeNo: String, refundNo: String, configuration: AlipayConfiguration,
                                    now: Date) throws(QueryError) -> ChannelRequest {
        let biz = JSONValue.object([
            .init(key: "out_trade_no", value: .string(outTradeNo)),
            .init(key: "out_request_no", value: .string(refundNo)),
            .init(key: "query_options", value: .array([.string("gmt_refund_pay")])),
        ])
        let pairs = try AlipayGateway.signedParameters(method: queryMethod, bizContent: biz, configuration: configuration, now: now)
        return AlipayGateway.post(pairs, configuration: configuration)
    }

    /// `10000` with `refund_status: REFUND_SUCCESS` → the refund (`refund_amount` is this
    /// refund's); `10000` without it → not found: Alipay's documented "not received or
    /// failed". `ACQ.TRADE_NOT_EXIST` → not found. Other errors as the order query.
    public static func queryResult(_ response: ChannelResponse, outTradeNo: String, refundNo: String,
                                   configuration: AlipayConfiguration) throws(QueryError) -> RefundQueryResult {
        let answer = try AlipayGateway.answer(response, node: AlipayGateway.responseNode(method: queryMethod),
                                              configuration: configuration)
        if answer.subCode == "ACQ.TRADE_NOT_EXIST" {
            guard answer.verified else { throw .transient(.badSignature, "unsigned not-found response") }
            return .notFound
        }
        guard answer.code == "10000" else { throw AlipayGateway.failure(answer) }
        guard answer.verified else { throw .permanent(.badSignature, "unsigned refund query response") }
        let body = answer.body
        guard body["refund_status"]?.stringValue == "REFUND_SUCCESS" else { return .notFound }
        guard body["out_trade_no"]?.stringValue == outTradeNo, body["out_request_no"]?.stringValue == refundNo else {
            throw .permanent(.malformedResponse, "out_trade_no or out_request_no differs from the request")
        }
        guard let amountText = body["refund_amount"]?.stringValue, let amount = Money.parseMinorUnits(amountText) else {
            throw .permanent(.malformedResponse, "refund_amount")
        }
        return .found(RefundEvidence(
            channel: configuration.channelID, outTradeNo: outTradeNo, channelTradeNo: body["trade_no"]?.stringValue,
            refundNo: refundNo, channelRefundID: nil, status: .succeeded, amountMinor: amount, currency: "CNY",
            refundedAt: body["gmt_refund_pay"]?.stringValue.flatMap { Timestamps.parseAlipay(String($0.prefix(19))) }))
    }
}
