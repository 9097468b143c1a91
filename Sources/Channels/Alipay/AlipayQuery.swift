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
        guard let key = configuration.appPrivateKey else {
            throw .permanent(.invalidRequest, "app_private_key_file is not configured")
        }
        let biz = JSONValue.object(["out_trade_no": .string(outTradeNo)]).serialized()
        var pairs: [FormEncoding.Pair] = [
            .init(key: "app_id", value: Array(configuration.appID.utf8)),
            .init(key: "method", value: Array(method.utf8)),
            .init(key: "format", value: Array("JSON".utf8)),
            .init(key: "charset", value: Array("utf-8".utf8)),
            .init(key: "sign_type", value: Array("RSA2".utf8)),
            .init(key: "timestamp", value: Array(Timestamps.formatAlipay(now).utf8)),
            .init(key: "version", value: Array("1.0".utf8)),
            .init(key: "biz_content", value: Array(biz.utf8)),
        ]
        // Requests sign everything but `sign` (sign_type included), as Alipay's SDKs do.
        let content = AlipaySignature.signContent(pairs, excludingSignType: false)!
        pairs.append(.init(key: "sign", value: Array(AlipaySignature.base64(key.signSHA256(content)).utf8)))
        return ChannelRequest(
            method: "POST", url: configuration.gatewayURL,
            headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded;charset=utf-8")],
            body: FormEncoding.encode(pairs)
        )
    }

    /// Reads the gateway's answer. The signature is checked over the exact text of the
    /// response node as it appears in the bytes. `10000` → found; `ACQ.TRADE_NOT_EXIST`
    /// → not found; `20000`, `isp.*`, `ACQ.SYSTEM_ERROR`, 5xx, 429 → transient; anything else
    /// permanent.
    public static func interpret(_ response: ChannelResponse, configuration: AlipayConfiguration, outTradeNo: String) throws(QueryError) -> OrderQueryResult {
        if response.status >= 500 || response.status == 429 || response.status == 408 {
            throw .transient(.httpStatus, "HTTP \(response.status)")
        }
        guard response.status == 200 else { throw .permanent(.httpStatus, "HTTP \(response.status)") }
        let (nodeRange, signature) = try response.body.withUnsafeBufferPointer { bytes throws(QueryError) -> (Range<Int>, String?) in
            guard let view = JSONObjectView(bytes) else { throw .permanent(.malformedResponse, "not a JSON object") }
            // The answer or the error node, whichever comes first.
            let nodes = [view[responseNode], view["error_response"]].compactMap { $0 }
            guard let node = nodes.min(by: { $0.range.lowerBound < $1.range.lowerBound }) else {
                throw .permanent(.malformedResponse, "no \(responseNode)")
            }
            return (node.range, view["sign"]?.string)
        }
        var verified = false
        if let signature {
            guard let signatureBytes = AlipaySignature.decodeBase64(signature),
                configuration.alipayPublicKey.isValidSHA256Signature(signatureBytes, for: response.body[nodeRange])
            else { throw .permanent(.badSignature, "response signature") }
            verified = true
        }
        // Checked already as part of the whole answer, so this parse does not fail.
        guard let body = try? JSONValue.parse(response.body[nodeRange]) else { throw .permanent(.malformedResponse, "not JSON") }
        let code = body["code"]?.stringValue ?? ""
        let subCode = body["sub_code"]?.stringValue ?? ""
        if code == "10000" {
            guard verified else { throw .permanent(.badSignature, "unsigned success response") }
            return .found(try order(from: body, channel: configuration.channelID, outTradeNo: outTradeNo))
        }
        if subCode == "ACQ.TRADE_NOT_EXIST" {
            guard verified else { throw .transient(.badSignature, "unsigned not-found response") }
            return .notFound(outTradeNo: outTradeNo)
        }
        let detail = "code \(code.prefix(16)) \(subCode.prefix(48))"
        if code == "20000" || subCode.hasPrefix("isp.") || subCode == "ACQ.SYSTEM_ERROR" || subCode.hasPrefix("aop.") && subCode.contains("unknow") {
            throw .transient(.channelError, detail)
        }
        throw .permanent(.channelError, detail)
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
