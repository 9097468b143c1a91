public import PayhookCore
public import Foundation

/// `alipay.trade.query`: the signed gateway request and the verified reading of its answer.
/// Pure functions; `ChannelClients` sends the request and hands back the answer.
public enum AlipayQuery {
    public static let method = "alipay.trade.query"
    public static let responseNode = "alipay_trade_query_response"

    /// The gateway request: system parameters and `biz_content` in a form body, signed RSA2
    /// with the app private key over the sorted parameters.
    public static func makeRequest(configuration: AlipayConfiguration, outTradeNo: String, now: Date) throws(QueryError) -> ChannelRequest {
        let biz = JSONValue.object(["out_trade_no": .string(outTradeNo)])
        let pairs = try AlipayGateway.signedParameters(method: method, bizContent: biz, configuration: configuration, now: now)
        return AlipayGateway.post(pairs, configuration: configuration)
    }

    /// Reads the gateway's answer. The signature is checked over the exact text of the
    /// response node as it appears in the bytes. `10000` → found; `ACQ.TRADE_NOT_EXIST`
    /// → not found; `20000`, `isp.*`, `ACQ.SYSTEM_ERROR`, 5xx, 429 → transient; anything else
    /// permanent.
    public static func interpret(_ response: ChannelResponse, configuration: AlipayConfiguration, outTradeNo: String) throws(QueryError) -> OrderQueryResult {
        let answer = try AlipayGateway.answer(response, node: responseNode, configuration: configuration)
        if answer.code == "10000" {
            guard answer.verified else { throw .permanent(.badSignature, "unsigned success response") }
            return .found(try order(from: answer.body, channel: configuration.channelID, outTradeNo: outTradeNo))
        }
        if answer.subCode == "ACQ.TRADE_NOT_EXIST" {
            guard answer.verified else { throw .transient(.badSignature, "unsigned not-found response") }
            return .notFound(outTradeNo: outTradeNo)
        }
        throw AlipayGateway.failure(answer)
    }

    static func order(from body: JSONValue, channel: String, outTradeNo: String) throws(QueryError) -> OrderEvidence {
        guard let no = body["out_trade_no"]?.stringValue, no == outTradeNo else {
            throw .permanent(.malformedResponse, "out_trade_no differs from the request")
        }
        guard let amountText = body["total_amount"]?.stringValue, let amount = Money.parseMinorUnits(amountText) else {
            throw .permanent(.malformedResponse, "total_amount")
        }
        guard let tradeStatus = body["trade_status"]?.stringValue else {
            throw .permanent(.malformedResponse, "trade_status")
        }
        let paidAt = body["send_pay_date"]?.stringValue.flatMap(Timestamps.parseAlipay)
        return OrderEvidence(
            channel: channel, outTradeNo: no, channelTradeNo: body["trade_no"]?.stringValue,
            status: AlipaySignature.status(tradeStatus), amountMinor: amount,
            currency: body["trans_currency"]?.stringValue ?? "CNY",
            paidAt: paidAt, payer: body["buyer_user_id"]?.stringValue ?? body["buyer_open_id"]?.stringValue
        )
    }
}
