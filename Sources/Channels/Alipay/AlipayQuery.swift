public import Foundation

/// `alipay.trade.query`: the signed gateway request and the verified reading of its answer.
/// Pure functions; ``AlipayAdapter/queryOrder(outTradeNo:)`` sends through a transport.
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
        let members: [(key: String, value: JSONValue, range: Range<Int>)]
        do { members = try JSONValue.topLevelMembers(response.body) } catch {
            throw .permanent(.malformedResponse, "not JSON")
        }
        guard let node = members.first(where: { $0.key == responseNode || $0.key == "error_response" }) else {
            throw .permanent(.malformedResponse, "no \(responseNode)")
        }
        let signature = members.first(where: { $0.key == "sign" })?.value.stringValue
        var verified = false
        if let signature {
            guard let signatureBytes = AlipaySignature.decodeBase64(signature),
                configuration.alipayPublicKey.isValidSHA256Signature(signatureBytes, for: response.body[node.range])
            else { throw .permanent(.badSignature, "response signature") }
            verified = true
        }
        let body = node.value
        let code = body["code"]?.stringValue ?? ""
        let subCode = body["sub_code"]?.stringValue ?? ""
        if code == "10000" {
            guard verified else { throw .permanent(.badSignature, "unsigned success response") }
            return .found(try order(from: body, outTradeNo: outTradeNo))
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

    static func order(from body: JSONValue, outTradeNo: String) throws(QueryError) -> QueriedOrder {
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
        return QueriedOrder(
            outTradeNo: no, channelTradeNo: body["trade_no"]?.stringValue,
            status: AlipaySignature.status(tradeStatus), amountMinor: amount,
            currency: body["trans_currency"]?.stringValue ?? "CNY",
            merchant: MerchantIdentity(appID: nil, merchantID: nil), paidAt: paidAt
        )
    }
}
