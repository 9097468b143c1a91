import Foundation
import PayhookCore
import Simulator
import Testing
@testable import Channels

/// The fixtures' signing time: 2026-11-27 11:20:06 +08:00.
private let signedAt = Date(timeIntervalSince1970: 1_795_749_606)
private let expiresAt = signedAt.addingTimeInterval(900)

func expectCreationError(_ kind: QueryError.Kind, _ code: QueryError.Code, detail: String? = nil,
                         sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(QueryError) -> Any) {
    do {
        let result = try body()
        Issue.record("expected \(kind) \(code), got \(result)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.kind == kind && error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let detail { #expect(error.detail.contains(detail), "\(error.detail)", sourceLocation: sourceLocation) }
    }
}

/// `{"status":..,"headers":{..},"body":".."}` fixtures as a channel answer.
private func fixtureResponse(_ object: [String: Any]) -> ChannelResponse {
    let headers = (object["headers"] as! [String: String]).map { HeaderField(name: $0.key, value: $0.value) }.sorted { $0.name < $1.name }
    return ChannelResponse(status: object["status"] as! Int, headers: headers, body: Array((object["body"] as! String).utf8))
}

private func ready(_ step: CreationStep, sourceLocation: SourceLocation = #_sourceLocation) -> FrontEndParameters? {
    if case .ready(let parameters) = step { return parameters }
    Issue.record("expected .ready, got \(step)", sourceLocation: sourceLocation)
    return nil
}

private func call(_ step: CreationStep, sourceLocation: SourceLocation = #_sourceLocation) -> ChannelRequest? {
    if case .call(let request) = step { return request }
    Issue.record("expected .call, got \(step)", sourceLocation: sourceLocation)
    return nil
}

private func created(_ result: CreationResult, sourceLocation: SourceLocation = #_sourceLocation) -> FrontEndParameters? {
    if case .created(let parameters) = result { return parameters }
    Issue.record("expected .created, got \(result)", sourceLocation: sourceLocation)
    return nil
}

// MARK: - Alipay

@Suite struct AlipayOrderCreationTests {
    let config: AlipayConfiguration
    let appPublicKey: RSAPublicKey
    let alipayKey: RSAPrivateKey

    init() throws {
        config = AlipayConfiguration(
            channelID: "alipay", appID: "2021000000000001",
            alipayPublicKey: try RSAPublicKey(pemRepresentation: Fixture.text("alipay_public.pem")),
            appPrivateKey: try RSAPrivateKey(pemRepresentation: Fixture.text("app_private_pkcs1.pem")),
            gatewayURL: "http://127.0.0.1:1/gateway.do")
        appPublicKey = try RSAPublicKey(pemRepresentation: Fixture.text("app_public.pem"))
        alipayKey = try RSAPrivateKey(pemRepresentation: Fixture.text("alipay_private_pkcs8.pem"))
    }

    /// The order the fixture script signed.
    func order(_ scene: PaymentScene, full: Bool = true) -> ChannelOrderRequest {
        ChannelOrderRequest(
            outTradeNo: "PH20261127ABCDEFGH23456789", scene: scene, amountMinor: 8888, subject: #"测试 <Payhook> & "1""#,
            description: full ? "Payhook order body" : nil, expiresAt: full ? expiresAt : nil,
            notifyURL: "https://pay.example.com/notify/alipay", returnURL: "https://pay.example.com/return/alipay",
            attach: full ? "a=1&b=two words" : nil)
    }

    func params(_ encoded: some StringProtocol) -> [String: String] {
        Dictionary(FormEncoding.parse(String(encoded))!.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) }, uniquingKeysWith: { a, _ in a })
    }

    /// An answer signed by Alipay's key over the exact node text.
    func answer(_ node: String, _ inner: String, signed: Bool = true, status: Int = 200) -> ChannelResponse {
        let sign = signed ? #","sign":"\#(AlipaySignature.base64(alipayKey.signSHA256(Array(inner.utf8))))""# : ""
        return ChannelResponse(status: status, headers: [], body: Array(#"{"\#(node)":\#(inner)\#(sign)}"#.utf8))
    }

    @Test func pagePayMatchesTheIndependentVector() throws {
        let fixture = try Fixture.json("alipay_page_pay_request.json")
        let fields = try #require(ready(try AlipayOrderCreation.step(order(.page), configuration: config, now: signedAt)))
        #expect(fields.fields.map(\.name) == ["pay_url", "form_html"])
        let payURL = try #require(fields["pay_url"])
        #expect(payURL == fixture["pay_url"] as? String)
        let sent = params(payURL.split(separator: "?", maxSplits: 1)[1])
        #expect(sent["sign"] == fixture["sign"] as? String, "RSA PKCS#1 v1.5 is deterministic: exact bytes")
        // The signed text as the script wrote it verifies with the app's public key.
        let content = Array((fixture["sign_content"] as! String).utf8)
        #expect(appPublicKey.isValidSHA256Signature(Array(Data(base64Encoded: sent["sign"]!)!), for: content))
    }

    @Test func formHTMLCarriesTheSameSignedParametersEscaped() throws {
        let fixture = try Fixture.json("alipay_page_pay_request.json")
        let fields = try #require(ready(try AlipayOrderCreation.step(order(.page), configuration: config, now: signedAt)))
        let html = try #require(fields["form_html"])
        #expect(html.hasPrefix(#"<form name="punchout_form" method="post" action="http://127.0.0.1:1/gateway.do?"#))
        #expect(html.hasSuffix("<script>document.forms[0].submit();</script>"))
        #expect(!html.contains("<Payhook>") && !html.contains(#""1""#), "the subject is escaped")
        func unescape(_ s: String) -> String {
            s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&amp;", with: "&")
        }
        func attribute(after marker: String) throws -> String {
            let start = try #require(html.range(of: marker)).upperBound
            let end = try #require(html[start...].firstIndex(of: "\""))
            return unescape(String(html[start..<end]))
        }
        let action = try attribute(after: #"action=""#)
        let biz = try attribute(after: #"name="biz_content" value=""#)
        let expected = Dictionary((fixture["params"] as! [[String]]).map { ($0[0], $0[1]) }, uniquingKeysWith: { a, _ in a })
        #expect(biz == expected["biz_content"])
        var query = params(action.split(separator: "?", maxSplits: 1)[1])
        #expect(query["biz_content"] == nil, "biz_content travels in the form body")
        query["biz_content"] = biz
        #expect(query == expected)
    }

    @Test func wapPayHasItsProductCodeAndQuitURL() throws {
        let fields = try #require(ready(try AlipayOrderCreation.step(order(.wap, full: false), configuration: config, now: signedAt)))
        let sent = params(try #require(fields["pay_url"]).split(separator: "?", maxSplits: 1)[1])
        #expect(sent["method"] == "alipay.trade.wap.pay")
        #expect(sent["return_url"] == "https://pay.example.com/return/alipay")
        #expect(sent["biz_content"] == #"{"out_trade_no":"PH20261127ABCDEFGH23456789","total_amount":"88.88","subject":"测试 <Payhook> & \"1\"","product_code":"QUICK_WAP_WAY","quit_url":"https://pay.example.com/return/alipay"}"#)
        let pairs = FormEncoding.parse(String(try #require(fields["pay_url"]).split(separator: "?", maxSplits: 1)[1]))!
        let content = AlipaySignature.signContent(pairs, excludingSignType: false)!
        #expect(appPublicKey.isValidSHA256Signature(Array(Data(base64Encoded: sent["sign"]!)!), for: content))
    }

    @Test func appOrderStringMatchesTheIndependentVector() throws {
        let fixture = try Fixture.json("alipay_app_pay_request.json")
        let fields = try #require(ready(try AlipayOrderCreation.step(order(.app, full: false), configuration: config, now: signedAt)))
        #expect(fields.fields.map(\.name) == ["order_string"])
        #expect(fields["order_string"] == fixture["order_string"] as? String)
        #expect(params(fields["order_string"]!)["return_url"] == nil, "app.pay has no return_url")
    }

    @Test func precreateRequestMatchesTheIndependentVector() throws {
        let fixture = try Fixture.json("alipay_precreate_request.json")
        let request = try #require(call(try AlipayOrderCreation.step(order(.qr, full: false), configuration: config, now: signedAt)))
        #expect(request.method == "POST" && request.url == "http://127.0.0.1:1/gateway.do")
        #expect(String(decoding: request.body, as: UTF8.self) == fixture["body"] as? String)
        #expect(params(String(decoding: request.body, as: UTF8.self))["sign"] == fixture["sign"] as? String)
    }

    @Test func precreateAnswerFixture() throws {
        let response = ChannelResponse(status: 200, headers: [], body: try Fixture.bytes("alipay_precreate_response.json"))
        let fields = try #require(created(try AlipayOrderCreation.result(response, order: order(.qr), configuration: config)))
        #expect(fields.fields == [.init("qr_code", "https://qr.alipay.com/bax03431ljhokirwl38f00a7")])
        // Any change to the node breaks the signature.
        var tampered = response
        tampered.body = Array(String(decoding: response.body, as: UTF8.self).replacingOccurrences(of: "bax0", with: "evil").utf8)
        expectCreationError(.permanent, .badSignature) { () throws(QueryError) in try AlipayOrderCreation.result(tampered, order: order(.qr), configuration: config) }
        // Another order's answer is refused.
        var other = order(.qr)
        other.outTradeNo = "PH-OTHER"
        expectCreationError(.permanent, .malformedResponse) { () throws(QueryError) in try AlipayOrderCreation.result(response, order: other, configuration: config) }
    }

    @Test func precreateErrorsAreClassifiedAsTheQueryClassifiesThem() throws {
        let node = "alipay_trade_precreate_response"
        func result(_ response: ChannelResponse) throws(QueryError) -> CreationResult {
            try AlipayOrderCreation.result(response, order: order(.qr), configuration: config)
        }
        expectCreationError(.permanent, .badSignature) { () throws(QueryError) in
            try result(answer(node, #"{"code":"10000","msg":"Success","out_trade_no":"PH20261127ABCDEFGH23456789","qr_code":"x"}"#, signed: false))
        }
        for (inner, kind) in [
            (#"{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}"#, QueryError.Kind.transient),
            (#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR"}"#, .transient),
            (#"{"code":"40004","msg":"Business Failed","sub_code":"isp.rpc-error"}"#, .transient),
            (#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TOTAL_FEE_EXCEED"}"#, .permanent),
            (#"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}"#, .permanent),
        ] {
            let response = answer(node, inner)
            var query: QueryError?
            do { _ = try AlipayQuery.interpret(answer(AlipayQuery.responseNode, inner), configuration: config, outTradeNo: "PH20261127ABCDEFGH23456789") } catch { query = error }
            expectCreationError(kind, .channelError) { () throws(QueryError) in try result(response) }
            #expect(query?.kind == kind, "the query classifies \(inner) alike")
        }
        expectCreationError(.transient, .httpStatus) { () throws(QueryError) in try result(answer(node, "{}", status: 502)) }
        expectCreationError(.permanent, .httpStatus) { () throws(QueryError) in try result(answer(node, "{}", status: 403)) }
        expectCreationError(.permanent, .malformedResponse) { () throws(QueryError) in
            try result(ChannelResponse(status: 200, headers: [], body: Array("<html>".utf8)))
        }
    }

    @Test func closeRequestIsSigned() throws {
        let request = try AlipayOrderCreation.closeRequest(outTradeNo: "PH1", configuration: config, now: signedAt)
        let pairs = FormEncoding.parse(request.body)!
        let sent = params(String(decoding: request.body, as: UTF8.self))
        #expect(sent["method"] == "alipay.trade.close" && sent["biz_content"] == #"{"out_trade_no":"PH1"}"#)
        #expect(sent["timestamp"] == "2026-11-27 11:20:06" && sent["sign_type"] == "RSA2")
        let content = AlipaySignature.signContent(pairs, excludingSignType: false)!
        #expect(appPublicKey.isValidSHA256Signature(Array(Data(base64Encoded: sent["sign"]!)!), for: content))
    }

    @Test func closeAnswerFixtures() throws {
        func close(_ name: String) throws -> CloseResult {
            try AlipayOrderCreation.closeResult(ChannelResponse(status: 200, headers: [], body: try Fixture.bytes(name)),
                                                outTradeNo: "PH20261127ABCDEFGH23456789", configuration: config)
        }
        #expect(try close("alipay_close_response.json") == .closed)
        #expect(try close("alipay_close_not_exist.json") == .notFound)
        #expect(try close("alipay_close_status_error.json") == .notClosable("ACQ.TRADE_STATUS_ERROR"))
    }

    @Test func closeAnswersNeedTheirSignature() throws {
        let node = "alipay_trade_close_response"
        func close(_ response: ChannelResponse) throws(QueryError) -> CloseResult {
            try AlipayOrderCreation.closeResult(response, outTradeNo: "PH1", configuration: config)
        }
        #expect(try close(answer(node, #"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.REASON_TRADE_STATUS_INVALID"}"#)) == .notClosable("ACQ.REASON_TRADE_STATUS_INVALID"))
        expectCreationError(.permanent, .badSignature) { () throws(QueryError) in try close(answer(node, #"{"code":"10000","msg":"Success","out_trade_no":"PH1"}"#, signed: false)) }
        expectCreationError(.transient, .badSignature) { () throws(QueryError) in try close(answer(node, #"{"code":"40004","sub_code":"ACQ.TRADE_NOT_EXIST"}"#, signed: false)) }
        expectCreationError(.transient, .badSignature) { () throws(QueryError) in try close(answer(node, #"{"code":"40004","sub_code":"ACQ.TRADE_STATUS_ERROR"}"#, signed: false)) }
        expectCreationError(.transient, .channelError) { () throws(QueryError) in try close(answer(node, #"{"code":"20000","sub_code":"isp.unknow-error"}"#)) }
        expectCreationError(.transient, .channelError) { () throws(QueryError) in try close(answer(node, #"{"code":"40004","sub_code":"ACQ.SYSTEM_ERROR"}"#)) }
        expectCreationError(.transient, .httpStatus) { () throws(QueryError) in try close(answer(node, "{}", status: 503)) }
        expectCreationError(.permanent, .channelError) { () throws(QueryError) in try close(answer(node, #"{"code":"40002","sub_code":"isv.invalid-signature"}"#)) }
        // A forged answer is refused however it decides.
        var forged = try Fixture.text("alipay_close_not_exist.json")
        forged = forged.replacingOccurrences(of: "ACQ.TRADE_NOT_EXIST", with: "ACQ.TRADE_STATUS_ERROR")
        expectCreationError(.permanent, .badSignature) { () throws(QueryError) in try close(ChannelResponse(status: 200, headers: [], body: Array(forged.utf8))) }
    }

    @Test(arguments: [PaymentScene.native, .jsapi, .h5, .deduct])
    func otherChannelsScenesAreRefused(_ scene: PaymentScene) {
        expectCreationError(.permanent, .invalidRequest, detail: "scene \(scene.rawValue) is not an Alipay scene") { () throws(QueryError) in
            try AlipayOrderCreation.step(order(scene), configuration: config, now: signedAt)
        }
    }

    @Test func amountIsFormattedExactly() throws {
        for (minor, text) in [(Int64(1), "0.01"), (10, "0.10"), (100, "1.00"), (10_000_000_000, "100000000.00")] {
            var o = order(.app, full: false)
            o.amountMinor = minor
            let fields = try #require(ready(try AlipayOrderCreation.step(o, configuration: config, now: signedAt)))
            #expect(params(fields["order_string"]!)["biz_content"]!.contains(#""total_amount":"\#(text)""#))
        }
        var zero = order(.app)
        zero.amountMinor = 0
        expectCreationError(.permanent, .invalidRequest) { () throws(QueryError) in try AlipayOrderCreation.step(zero, configuration: config, now: signedAt) }
    }

    @Test func withoutAnAppKeyNothingIsSigned() {
        var verifyOnly = config
        verifyOnly.appPrivateKey = nil
        expectCreationError(.permanent, .invalidRequest) { () throws(QueryError) in try AlipayOrderCreation.step(order(.page), configuration: verifyOnly, now: signedAt) }
    }
}

// MARK: - WeChat Pay

@Suite struct WeChatPayOrderCreationTests {
    let config: WeChatPayConfiguration
    let pubKeyID = "PUB_KEY_ID_0114232134912410000000000000000001"
    let merchantPublicKey: RSAPublicKey

    init() throws {
        config = WeChatPayConfiguration(
            channelID: "wechatpay", mchID: "1900000001", appID: "wx0000000000000001",
            apiV3Key: SharedSecret(text: try Fixture.text("wechat_apiv3.key").trimmingCharacters(in: .whitespacesAndNewlines)),
            platformKeys: [pubKeyID: try RSAPublicKey(pemRepresentation: Fixture.text("wechat_pubkey_id_public.pem"))],
            merchantPrivateKey: try RSAPrivateKey(pemRepresentation: Fixture.text("wechat_merchant_private.pem")),
            merchantSerialNo: "0000000000000000000000000000000000000001",
            apiBaseURL: "https://api.mch.weixin.qq.com/")
        merchantPublicKey = try RSAPublicKey(pemRepresentation: Fixture.text("wechat_merchant_public.pem"))
    }

    func side() throws -> WeChatPayChannelSide {
        WeChatPayChannelSide(
            signingKey: try RSAPrivateKey(pemRepresentation: Fixture.text("wechat_pubkey_id_private.pem")), signingSerial: pubKeyID,
            apiV3Key: config.apiV3Key, merchantPublicKey: merchantPublicKey, mchID: config.mchID, appID: config.appID)
    }

    func order(_ scene: PaymentScene, payer: PayerDetails = PayerDetails()) -> ChannelOrderRequest {
        ChannelOrderRequest(
            outTradeNo: "PH20261127WECHAT234567", scene: scene, amountMinor: 8888, subject: #"测试商品 "jsapi""#, expiresAt: expiresAt,
            notifyURL: "https://pay.example.com/notify/wechatpay", attach: "site-order-42", payer: payer)
    }

    func signed(_ status: Int, _ body: String, at: Date = signedAt) -> ChannelResponse {
        let bytes = Array(body.utf8)
        return ChannelResponse(status: status, headers: try! side().signedHeaders(body: bytes, timestamp: at), body: bytes)
    }

    @Test(arguments: ["jsapi", "h5"])
    func prepayRequestMatchesTheIndependentVector(_ name: String) throws {
        let vector = try Fixture.json("wechat_prepay_requests.json")[name] as! [String: String]
        let o = name == "jsapi"
            ? order(.jsapi, payer: PayerDetails(openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))
            : order(.h5, payer: PayerDetails(clientIP: "203.0.113.7"))
        let request = try #require(call(try WeChatPayOrderCreation.step(o, configuration: config, now: signedAt, nonce: vector["nonce"]!)))
        #expect(request.method == "POST")
        #expect(request.url == "https://api.mch.weixin.qq.com" + vector["target"]!)
        #expect(String(decoding: request.body, as: UTF8.self) == vector["body"])
        #expect(request.headers.first(named: "Authorization") == vector["authorization"], "the exact header, signature bytes included")
        #expect(request.headers.first(named: "Content-Type") == "application/json")
    }

    @Test func nativeAndAppBodiesHaveNoPayerOrSceneInfo() throws {
        for scene in [PaymentScene.native, .app] {
            let request = try #require(call(try WeChatPayOrderCreation.step(order(scene), configuration: config, now: signedAt, nonce: "N1")))
            #expect(request.url == "https://api.mch.weixin.qq.com/v3/pay/transactions/\(scene.rawValue)")
            #expect(String(decoding: request.body, as: UTF8.self) == #"{"appid":"wx0000000000000001","mchid":"1900000001","description":"测试商品 \"jsapi\"","out_trade_no":"PH20261127WECHAT234567","time_expire":"2026-11-27T11:35:06+08:00","attach":"site-order-42","notify_url":"https://pay.example.com/notify/wechatpay","amount":{"total":8888,"currency":"CNY"}}"#)
            let fields = try #require(WeChatPaySignature.parseAuthorization(request.headers.first(named: "Authorization")!))
            let message = SignedMessage.request(method: "POST", target: "/v3/pay/transactions/\(scene.rawValue)", timestamp: "1795749606", nonce: "N1", body: request.body)
            #expect(merchantPublicKey.isValidSHA256Signature(Array(Data(base64Encoded: fields["signature"]!)!), for: message))
        }
    }

    @Test func h5TypeDefaultsToWapAndCanBeSet() throws {
        let ios = try #require(call(try WeChatPayOrderCreation.step(order(.h5, payer: PayerDetails(clientIP: "198.51.100.1", h5Type: "iOS")), configuration: config, now: signedAt, nonce: "N1")))
        #expect(String(decoding: ios.body, as: UTF8.self).hasSuffix(#""scene_info":{"payer_client_ip":"198.51.100.1","h5_info":{"type":"iOS"}}}"#))
        let wap = try #require(call(try WeChatPayOrderCreation.step(order(.h5, payer: PayerDetails(clientIP: "198.51.100.1")), configuration: config, now: signedAt, nonce: "N1")))
        #expect(String(decoding: wap.body, as: UTF8.self).hasSuffix(#""h5_info":{"type":"Wap"}}}"#))
    }

    @Test func scenesCheckTheirPayer() {
        expectCreationError(.permanent, .invalidRequest, detail: "openid") { () throws(QueryError) in
            try WeChatPayOrderCreation.step(order(.jsapi), configuration: config, now: signedAt, nonce: "N1")
        }
        expectCreationError(.permanent, .invalidRequest, detail: "openid") { () throws(QueryError) in
            try WeChatPayOrderCreation.step(order(.jsapi, payer: PayerDetails(openid: "")), configuration: config, now: signedAt, nonce: "N1")
        }
        expectCreationError(.permanent, .invalidRequest, detail: "client_ip") { () throws(QueryError) in
            try WeChatPayOrderCreation.step(order(.h5, payer: PayerDetails(openid: "o1")), configuration: config, now: signedAt, nonce: "N1")
        }
        for scene in [PaymentScene.page, .wap, .qr, .deduct] {
            expectCreationError(.permanent, .invalidRequest, detail: "scene \(scene.rawValue) is not a WeChat Pay scene") { () throws(QueryError) in
                try WeChatPayOrderCreation.step(order(scene), configuration: config, now: signedAt, nonce: "N1")
            }
        }
        var tooLarge = order(.native)
        tooLarge.amountMinor = Int64(Int32.max) + 1
        expectCreationError(.permanent, .invalidRequest) { () throws(QueryError) in try WeChatPayOrderCreation.step(tooLarge, configuration: config, now: signedAt, nonce: "N1") }
    }

    @Test func jsapiAndAppFrontEndMatchTheIndependentVectors() throws {
        let front = try Fixture.json("wechat_front_end.json")
        let response = fixtureResponse(try Fixture.json("wechat_prepay_response.json"))
        let nonce = front["nonce"] as! String
        let jsapi = try #require(created(try WeChatPayOrderCreation.result(
            response, order: order(.jsapi, payer: PayerDetails(openid: "o")), configuration: config, now: signedAt, nonce: nonce)))
        let expectedJSAPI = front["jsapi"] as! [String: String]
        #expect(jsapi.fields.map(\.name) == ["appId", "timeStamp", "nonceStr", "package", "signType", "paySign"])
        for field in jsapi.fields { #expect(field.value == expectedJSAPI[field.name], "\(field.name)") }
        let app = try #require(created(try WeChatPayOrderCreation.result(response, order: order(.app), configuration: config, now: signedAt, nonce: nonce)))
        let expectedApp = front["app"] as! [String: String]
        #expect(app.fields.map(\.name) == ["appid", "partnerid", "prepayid", "package", "noncestr", "timestamp", "sign"])
        for field in app.fields { #expect(field.value == expectedApp[field.name], "\(field.name)") }
    }

    @Test func nativeAndH5Answers() throws {
        let native = try #require(created(try WeChatPayOrderCreation.result(
            signed(200, #"{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}"#), order: order(.native), configuration: config, now: signedAt, nonce: "N")))
        #expect(native.fields == [.init("code_url", "weixin://wxpay/bizpayurl?pr=abc")])
        let h5 = try #require(created(try WeChatPayOrderCreation.result(
            signed(200, #"{"h5_url":"https://wx.tenpay.com/x?prepay_id=1"}"#), order: order(.h5), configuration: config, now: signedAt, nonce: "N")))
        #expect(h5.fields == [.init("h5_url", "https://wx.tenpay.com/x?prepay_id=1")])
        expectCreationError(.permanent, .malformedResponse) { () throws(QueryError) in
            try WeChatPayOrderCreation.result(signed(200, #"{"prepay_id":"wx1"}"#), order: order(.native), configuration: config, now: signedAt, nonce: "N")
        }
    }

    @Test func answersWithABadSignatureAreRefused() throws {
        let response = fixtureResponse(try Fixture.json("wechat_prepay_response.json"))
        var tampered = response
        tampered.body = Array(#"{"prepay_id":"wx-forged"}"#.utf8)
        expectCreationError(.permanent, .badSignature) { () throws(QueryError) in
            try WeChatPayOrderCreation.result(tampered, order: order(.app), configuration: config, now: signedAt, nonce: "N")
        }
        var unsigned = response
        unsigned.headers = []
        expectCreationError(.permanent, .badSignature) { () throws(QueryError) in
            try WeChatPayOrderCreation.result(unsigned, order: order(.app), configuration: config, now: signedAt, nonce: "N")
        }
        expectCreationError(.transient, .badSignature) { () throws(QueryError) in
            try WeChatPayOrderCreation.result(response, order: order(.app), configuration: config, now: signedAt.addingTimeInterval(3600), nonce: "N")
        }
    }

    @Test func prepayErrorsAreClassified() throws {
        func result(_ response: ChannelResponse) throws(QueryError) -> CreationResult {
            try WeChatPayOrderCreation.result(response, order: order(.native), configuration: config, now: signedAt, nonce: "N")
        }
        expectCreationError(.transient, .channelError, detail: "SYSTEM_ERROR") { () throws(QueryError) in try result(ChannelResponse(status: 500, headers: [], body: Array(#"{"code":"SYSTEM_ERROR","message":"x"}"#.utf8))) }
        expectCreationError(.transient, .httpStatus) { () throws(QueryError) in try result(ChannelResponse(status: 502, headers: [], body: Array("bad gateway".utf8))) }
        expectCreationError(.transient, .channelError, detail: "FREQUENCY_LIMITED") { () throws(QueryError) in try result(signed(429, #"{"code":"FREQUENCY_LIMITED","message":"x"}"#)) }
        expectCreationError(.permanent, .channelError, detail: "PARAM_ERROR") { () throws(QueryError) in try result(signed(400, #"{"code":"PARAM_ERROR","message":"x"}"#)) }
        expectCreationError(.permanent, .channelError, detail: "INVALID_REQUEST") { () throws(QueryError) in try result(signed(400, #"{"code":"INVALID_REQUEST","message":"x"}"#)) }
        expectCreationError(.permanent, .channelError, detail: "SIGN_ERROR") { () throws(QueryError) in try result(signed(401, #"{"code":"SIGN_ERROR","message":"x"}"#)) }
    }

    @Test func closeRequestIsSigned() throws {
        let request = try WeChatPayOrderCreation.closeRequest(outTradeNo: "PH 1", configuration: config, now: signedAt, nonce: "N1")
        #expect(request.method == "POST" && request.url == "https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/PH%201/close")
        #expect(request.body == Array(#"{"mchid":"1900000001"}"#.utf8))
        let fields = try #require(WeChatPaySignature.parseAuthorization(request.headers.first(named: "Authorization")!))
        let message = SignedMessage.request(method: "POST", target: "/v3/pay/transactions/out-trade-no/PH%201/close", timestamp: "1795749606", nonce: "N1", body: request.body)
        #expect(merchantPublicKey.isValidSHA256Signature(Array(Data(base64Encoded: fields["signature"]!)!), for: message))
    }

    @Test func closeAnswerFixtures() throws {
        let fixtures = try Fixture.json("wechat_close_responses.json")
        func close(_ name: String) throws -> CloseResult {
            try WeChatPayOrderCreation.closeResult(fixtureResponse(fixtures[name] as! [String: Any]), outTradeNo: "PH1", configuration: config, now: signedAt)
        }
        #expect(try close("closed") == .closed)
        #expect(try close("order_closed") == .closed)
        #expect(try close("order_paid") == .notClosable("ORDER_PAID"))
        #expect(try close("not_exist") == .notFound)
    }

    @Test func closeAnswersNeedTheirSignature() throws {
        func close(_ response: ChannelResponse) throws(QueryError) -> CloseResult {
            try WeChatPayOrderCreation.closeResult(response, outTradeNo: "PH1", configuration: config, now: signedAt)
        }
        #expect(try close(signed(202, #"{"code":"USER_PAYING","message":"x"}"#)) == .notClosable("USER_PAYING"))
        expectCreationError(.permanent, .badSignature) { () throws(QueryError) in try close(ChannelResponse(status: 204, headers: [], body: [])) }
        var forged = signed(204, "")
        forged.body = Array("{}".utf8)
        expectCreationError(.permanent, .badSignature) { () throws(QueryError) in try close(forged) }
        expectCreationError(.transient, .badSignature) { () throws(QueryError) in
            try close(ChannelResponse(status: 400, headers: [], body: Array(#"{"code":"ORDER_PAID","message":"x"}"#.utf8)))
        }
        expectCreationError(.transient, .badSignature) { () throws(QueryError) in
            try close(ChannelResponse(status: 404, headers: [], body: Array(#"{"code":"ORDER_NOT_EXIST","message":"x"}"#.utf8)))
        }
        expectCreationError(.transient, .channelError) { () throws(QueryError) in try close(ChannelResponse(status: 500, headers: [], body: Array(#"{"code":"SYSTEM_ERROR"}"#.utf8))) }
        expectCreationError(.permanent, .channelError, detail: "APPID_MCHID_NOT_MATCH") { () throws(QueryError) in try close(signed(400, #"{"code":"APPID_MCHID_NOT_MATCH","message":"x"}"#)) }
    }
}

// MARK: - Points

@Suite struct PointsOrderCreationTests {
    let config: PointsConfiguration
    var vectors: [String: Any] { try! Fixture.json("points_v2.json") }

    init() throws {
        config = PointsConfiguration(
            channelID: "points", partnerID: "site-001",
            hmacSecret: SharedSecret(text: try Fixture.text("points.secret").trimmingCharacters(in: .whitespacesAndNewlines)),
            apiBaseURL: "https://points.partner.example/api/")
    }

    var side: PointsChannelSide { PointsChannelSide(partnerID: "site-001", hmacSecret: config.hmacSecret) }

    func order(userID: String? = "member-7781") -> ChannelOrderRequest {
        ChannelOrderRequest(outTradeNo: "PH20261127POINTS234567", scene: .deduct, amountMinor: 8888, subject: "积分抵扣 #1",
                            expiresAt: expiresAt, notifyURL: "https://pay.example.com/notify/points", payer: PayerDetails(userID: userID))
    }

    func signed(_ status: Int, _ body: String, at: Date = signedAt) -> ChannelResponse {
        let bytes = Array(body.utf8)
        return ChannelResponse(status: status, headers: side.signedHeaders(body: bytes, timestamp: at), body: bytes)
    }

    func answer(status: String, outTradeNo: String = "PH20261127POINTS234567", extra: String = "") -> ChannelResponse {
        signed(200, #"{"partner_id":"site-001","out_trade_no":"\#(outTradeNo)","points_trade_no":"PT9","status":"\#(status)","amount":"88.88","currency":"CNY","points":8888,"user_id":"member-7781"\#(extra)}"#)
    }

    @Test(arguments: ["deduct", "reverse"])
    func requestsMatchTheIndependentVectors(_ name: String) throws {
        let vector = vectors[name] as! [String: String]
        let request: ChannelRequest
        if name == "deduct" {
            request = try #require(call(try PointsOrderCreation.step(order(), configuration: config, now: signedAt, nonce: vector["nonce"]!)))
        } else {
            request = try PointsOrderCreation.reverseRequest(outTradeNo: "PH20261127POINTS234567", reverseNo: "RV-20261127-1", amountMinor: 1000,
                                                             configuration: config, now: signedAt, nonce: vector["nonce"]!)
        }
        #expect(request.method == "POST")
        #expect(request.url == "https://points.partner.example" + vector["target"]!)
        #expect(request.target == vector["target"])
        #expect(String(decoding: request.body, as: UTF8.self) == vector["body"])
        #expect(request.headers.first(named: "X-Points-Signature") == vector["signature"])
        #expect(request.headers.first(named: "X-Points-Timestamp") == "1795749606" && request.headers.first(named: "X-Points-Partner-Id") == "site-001")
    }

    @Test func deductNeedsAUserAndIsThePointsScene() {
        expectCreationError(.permanent, .invalidRequest, detail: "user_id") { () throws(QueryError) in
            try PointsOrderCreation.step(order(userID: nil), configuration: config, now: signedAt, nonce: "nonce-0001")
        }
        for scene in PaymentScene.allCases where scene != .deduct {
            var o = order()
            o.scene = scene
            expectCreationError(.permanent, .invalidRequest, detail: "scene \(scene.rawValue) is not a points scene") { () throws(QueryError) in
                try PointsOrderCreation.step(o, configuration: config, now: signedAt, nonce: "nonce-0001")
            }
        }
    }

    @Test func paidAnswerFixtureSettles() throws {
        let response = fixtureResponse(vectors["deduct_answer"] as! [String: Any])
        let result = try PointsOrderCreation.result(response, order: order(), configuration: config, now: signedAt)
        guard case .settled(let evidence, let fields) = result else { Issue.record("\(result)"); return }
        #expect(evidence == OrderEvidence(
            channel: "points", outTradeNo: "PH20261127POINTS234567", channelTradeNo: "PT2026112700000000042", status: .paid,
            amountMinor: 8888, currency: "CNY", merchant: MerchantIdentity(appID: nil, merchantID: "site-001"),
            paidAt: signedAt.addingTimeInterval(1), payer: "member-7781"))
        #expect(fields.fields == [.init("points_trade_no", "PT2026112700000000042"), .init("status", "PAID")])
        var tampered = response
        tampered.body = Array(String(decoding: response.body, as: UTF8.self).replacingOccurrences(of: "88.88", with: "0.01").utf8)
        expectCreationError(.permanent, .badSignature) { () throws(QueryError) in try PointsOrderCreation.result(tampered, order: order(), configuration: config, now: signedAt) }
        expectCreationError(.transient, .badSignature) { () throws(QueryError) in
            try PointsOrderCreation.result(response, order: order(), configuration: config, now: signedAt.addingTimeInterval(3600))
        }
    }

    @Test func failedAndProcessingAnswers() throws {
        let failed = try PointsOrderCreation.result(answer(status: "FAILED", extra: #","code":"INSUFFICIENT_POINTS","message":"x""#), order: order(), configuration: config, now: signedAt)
        guard case .settled(let evidence, let fields) = failed else { Issue.record("\(failed)"); return }
        #expect(evidence.status == .closed && evidence.channelTradeNo == "PT9" && evidence.paidAt == nil)
        #expect(fields["status"] == "FAILED")
        let processing = try PointsOrderCreation.result(answer(status: "PROCESSING"), order: order(), configuration: config, now: signedAt)
        #expect(processing == .processing(FrontEndParameters([.init("points_trade_no", "PT9"), .init("status", "PROCESSING")])))
        expectCreationError(.permanent, .malformedResponse) { () throws(QueryError) in try PointsOrderCreation.result(answer(status: "MAYBE"), order: order(), configuration: config, now: signedAt) }
        expectCreationError(.permanent, .malformedResponse, detail: "out_trade_no") { () throws(QueryError) in
            try PointsOrderCreation.result(answer(status: "PAID", outTradeNo: "PH-OTHER"), order: order(), configuration: config, now: signedAt)
        }
    }

    @Test func deductErrorsAreClassified() {
        func result(_ response: ChannelResponse) throws(QueryError) -> CreationResult {
            try PointsOrderCreation.result(response, order: order(), configuration: config, now: signedAt)
        }
        expectCreationError(.permanent, .channelError, detail: "IDEMPOTENCY_CONFLICT") { () throws(QueryError) in try result(signed(409, #"{"code":"IDEMPOTENCY_CONFLICT","message":"x"}"#)) }
        expectCreationError(.permanent, .channelError, detail: "PARAM_ERROR") { () throws(QueryError) in try result(signed(400, #"{"code":"PARAM_ERROR","message":"x"}"#)) }
        expectCreationError(.permanent, .channelError, detail: "SIGN_ERROR") { () throws(QueryError) in try result(signed(401, #"{"code":"SIGN_ERROR","message":"x"}"#)) }
        // The outcome is unknown, never failed: ask again.
        expectCreationError(.transient, .channelError) { () throws(QueryError) in try result(ChannelResponse(status: 500, headers: [], body: Array(#"{"code":"SYSTEM_ERROR"}"#.utf8))) }
        expectCreationError(.transient, .httpStatus) { () throws(QueryError) in try result(ChannelResponse(status: 504, headers: [], body: [])) }
        expectCreationError(.transient, .channelError) { () throws(QueryError) in try result(signed(429, #"{"code":"FREQUENCY_LIMITED","message":"x"}"#)) }
    }

    @Test func reverseAnswers() throws {
        func reverse(_ status: String, reverseNo: String = "RV-1") throws(QueryError) -> PointsReversal {
            try PointsOrderCreation.reverseResult(
                signed(200, #"{"partner_id":"site-001","out_trade_no":"PH1","reverse_no":"\#(reverseNo)","status":"\#(status)","amount":"1.00"}"#),
                outTradeNo: "PH1", reverseNo: "RV-1", configuration: config, now: signedAt)
        }
        #expect(try reverse("REVERSED") == PointsReversal(outTradeNo: "PH1", reverseNo: "RV-1", status: .reversed, amountMinor: 100))
        #expect(try reverse("FAILED").status == .failed)
        #expect(try reverse("PROCESSING").status == .processing)
        expectCreationError(.permanent, .malformedResponse) { () throws(QueryError) in try reverse("DONE") }
        expectCreationError(.permanent, .malformedResponse, detail: "reverse_no") { () throws(QueryError) in try reverse("REVERSED", reverseNo: "RV-2") }
        expectCreationError(.transient, .httpStatus) { () throws(QueryError) in
            try PointsOrderCreation.reverseResult(ChannelResponse(status: 503, headers: [], body: []), outTradeNo: "PH1", reverseNo: "RV-1", configuration: config, now: signedAt)
        }
        expectCreationError(.permanent, .invalidRequest) { () throws(QueryError) in
            try PointsOrderCreation.reverseRequest(outTradeNo: "PH1", reverseNo: "RV-1", amountMinor: 0, configuration: config, now: signedAt, nonce: "nonce-0001")
        }
    }

    @Test func pointsHasNoCloseCall() throws {
        let adapter = AnyChannelAdapter.points(PointsAdapter(configuration: config))
        #expect(try adapter.closeRequest(outTradeNo: "PH1", now: signedAt) == nil)
        #expect(adapter.channelScenes == [.deduct])
        guard case .call(let request) = try adapter.creationStep(order(), now: signedAt) else { Issue.record("expected a call"); return }
        #expect(request.url == "https://points.partner.example/api/v2/deducts")
    }
}
