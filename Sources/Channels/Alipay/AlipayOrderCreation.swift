public import Foundation
public import PayhookCore

/// Alipay order creation and close: pure builders and readers over `gateway.do`, signed
/// and verified as the query is. page, wap and app are signed here and handed to the
/// buyer; qr is a server call to `alipay.trade.precreate`.
public enum AlipayOrderCreation {
    public static let pagePayMethod = "alipay.trade.page.pay"
    public static let wapPayMethod = "alipay.trade.wap.pay"
    public static let appPayMethod = "alipay.trade.app.pay"
    public static let precreateMethod = "alipay.trade.precreate"
    public static let closeMethod = "alipay.trade.close"

    /// page and wap → `.ready` with `pay_url` and `form_html`; app → `.ready` with
    /// `order_string`; qr → `.call` to precreate. Other scenes are refused (permanent).
    public static func step(_ order: ChannelOrderRequest, configuration: AlipayConfiguration, now: Date) throws(QueryError) -> CreationStep {
        try order.check(for: .alipay)
        switch order.scene {
        case .page, .wap:
            let method = order.scene == .page ? pagePayMethod : wapPayMethod
            let pairs = try AlipayGateway.signedParameters(
                method: method, bizContent: bizContent(order), configuration: configuration, now: now,
                notifyURL: order.notifyURL, returnURL: order.returnURL)
            return .ready(FrontEndParameters([
                .init("pay_url", url(configuration.gatewayURL, query: pairs)),
                .init("form_html", formHTML(pairs, gatewayURL: configuration.gatewayURL)),
            ]))
        case .app:
            let pairs = try AlipayGateway.signedParameters(
                method: appPayMethod, bizContent: bizContent(order), configuration: configuration, now: now,
                notifyURL: order.notifyURL)
            return .ready(FrontEndParameters([.init("order_string", String(decoding: FormEncoding.encode(pairs), as: UTF8.self))]))
        case .qr:
            let pairs = try AlipayGateway.signedParameters(
                method: precreateMethod, bizContent: bizContent(order), configuration: configuration, now: now,
                notifyURL: order.notifyURL)
            return .call(AlipayGateway.post(pairs, configuration: configuration))
        case .native, .jsapi, .h5, .deduct:
            throw .permanent(.invalidRequest, "scene \(order.scene.rawValue) is not an Alipay scene")
        }
    }

    /// The precreate answer: `10000` (signed) → `.created` with `qr_code`; errors as the
    /// query classifies them. page, wap and app make no call, so have no answer to read.
    public static func result(_ response: ChannelResponse, order: ChannelOrderRequest, configuration: AlipayConfiguration) throws(QueryError) -> CreationResult {
        try order.check(for: .alipay)
        guard order.scene == .qr else { throw .permanent(.invalidRequest, "scene \(order.scene.rawValue) makes no call") }
        let answer = try AlipayGateway.answer(response, node: AlipayGateway.responseNode(method: precreateMethod), configuration: configuration)
        guard answer.code == "10000" else { throw AlipayGateway.failure(answer) }
        guard answer.verified else { throw .permanent(.badSignature, "unsigned success response") }
        if let no = answer.body["out_trade_no"]?.stringValue, no != order.outTradeNo {
            throw .permanent(.malformedResponse, "out_trade_no differs from the request")
        }
        guard let qrCode = answer.body["qr_code"]?.stringValue, !qrCode.isEmpty else {
            throw .permanent(.malformedResponse, "qr_code")
        }
        return .created(FrontEndParameters([.init("qr_code", qrCode)]))
    }

    /// `alipay.trade.close` for `outTradeNo`, POSTed to the gateway.
    public static func closeRequest(outTradeNo: String, configuration: AlipayConfiguration, now: Date) throws(QueryError) -> ChannelRequest {
        let biz = JSONValue.object(["out_trade_no": .string(outTradeNo)])
        let pairs = try AlipayGateway.signedParameters(method: closeMethod, bizContent: biz, configuration: configuration, now: now)
        return AlipayGateway.post(pairs, configuration: configuration)
    }

    /// `10000` → closed; `ACQ.TRADE_NOT_EXIST` → not found; `ACQ.TRADE_STATUS_ERROR` and
    /// `ACQ.REASON_TRADE_STATUS_INVALID` → not closable. Each needs a valid signature; an
    /// unsigned one is transient (a retry may bring a signed answer). Errors as the query.
    public static func closeResult(_ response: ChannelResponse, outTradeNo: String, configuration: AlipayConfiguration) throws(QueryError) -> CloseResult {
        let answer = try AlipayGateway.answer(response, node: AlipayGateway.responseNode(method: closeMethod), configuration: configuration)
        let result: CloseResult
        switch (answer.code, answer.subCode) {
        case ("10000", _):
            guard answer.verified else { throw .permanent(.badSignature, "unsigned success response") }
            if let no = answer.body["out_trade_no"]?.stringValue, no != outTradeNo {
                throw .permanent(.malformedResponse, "out_trade_no differs from the request")
            }
            return .closed
        case (_, "ACQ.TRADE_NOT_EXIST"): result = .notFound
        case (_, "ACQ.TRADE_STATUS_ERROR"), (_, "ACQ.REASON_TRADE_STATUS_INVALID"): result = .notClosable(answer.subCode)
        default: throw AlipayGateway.failure(answer)
        }
        guard answer.verified else { throw .transient(.badSignature, "unsigned \(answer.subCode) response") }
        return result
    }

    /// biz_content in a fixed key order: out_trade_no, total_amount, subject, product_code
    /// (not for precreate), quit_url (wap), body, time_expire, passback_params.
    static func bizContent(_ order: ChannelOrderRequest) -> JSONValue {
        var members: [JSONValue.Member] = [
            .init(key: "out_trade_no", value: .string(order.outTradeNo)),
            .init(key: "total_amount", value: .string(Money.format(minorUnits: order.amountMinor))),
            .init(key: "subject", value: .string(order.subject)),
        ]
        let productCode: String? = switch order.scene {
        case .page: "FAST_INSTANT_TRADE_PAY"
        case .wap: "QUICK_WAP_WAY"
        case .app: "QUICK_MSECURITY_PAY"
        default: nil
        }
        if let productCode { members.append(.init(key: "product_code", value: .string(productCode))) }
        if order.scene == .wap, let returnURL = order.returnURL {
            members.append(.init(key: "quit_url", value: .string(returnURL)))
        }
        if let body = order.description, !body.isEmpty { members.append(.init(key: "body", value: .string(body))) }
        if let expiresAt = order.expiresAt {
            members.append(.init(key: "time_expire", value: .string(Timestamps.formatAlipay(expiresAt))))
        }
        if let attach = order.attach, !attach.isEmpty {
            // Alipay wants passback_params URL-encoded; it echoes them as sent.
            var encoded: [UInt8] = []
            FormEncoding.encode(attach.utf8, into: &encoded)
            members.append(.init(key: "passback_params", value: .string(String(decoding: encoded, as: UTF8.self))))
        }
        return .object(members)
    }

    /// `gateway?k=v&...`, every value form-encoded.
    static func url(_ gatewayURL: String, query pairs: [FormEncoding.Pair]) -> String {
        gatewayURL + (gatewayURL.contains("?") ? "&" : "?") + String(decoding: FormEncoding.encode(pairs), as: UTF8.self)
    }

    /// The Java SDK's auto-submitting form: the protocol parameters in the action's query,
    /// `biz_content` as a hidden field. Every attribute value is HTML-escaped (the SDK only
    /// escapes `"`; a subject with `<` or `&` must not change the page).
    static func formHTML(_ pairs: [FormEncoding.Pair], gatewayURL: String) -> String {
        let protocolPairs = pairs.filter { $0.key != "biz_content" }
        let action = url(gatewayURL, query: protocolPairs)
        var html = "<form name=\"punchout_form\" method=\"post\" action=\"\(HTMLText.escape(action))\">\n"
        for pair in pairs where pair.key == "biz_content" {
            html += "<input type=\"hidden\" name=\"biz_content\" value=\"\(HTMLText.escape(String(decoding: pair.value, as: UTF8.self)))\">\n"
        }
        html += "<input type=\"submit\" value=\"立即支付\" style=\"display:none\" >\n</form>\n"
        html += "<script>document.forms[0].submit();</script>"
        return html
    }
}
