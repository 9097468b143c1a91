import AsyncHTTPClient
import Channels
import Foundation
import NIOHTTP1
import PayhookCore
import Simulator
import Testing

@Suite struct AlipayOrderCreationTests {
    func pageBiz(_ no: String, amount: String = "88.88", scene: String = "FAST_INSTANT_TRADE_PAY") -> String {
        #"{"out_trade_no":"\#(no)","total_amount":"\#(amount)","subject":"Tea set 茶具","product_code":"\#(scene)","passback_params":"cart%3D7"}"#
    }

    @Test func pageCashierByGETPaysNotifiesAndReturnsSigned() async throws {
        let rig = try await TradeRig.start()
        let no = "PAGE0001"
        let returnURL = rig.inbox.baseURL + "/return/alipay"
        // Before the cashier opens, Alipay knows no trade.
        let early = try rig.alipayNode(
            try await rig.alipayCall(rig.alipayParameters(method: "alipay.trade.close", biz: #"{"out_trade_no":"\#(no)"}"#)),
            "alipay_trade_close_response")
        #expect(early["sub_code"]?.stringValue == "ACQ.TRADE_NOT_EXIST")
        #expect(try await rig.query("alipay", no) == .notFound(outTradeNo: no))

        let pairs = rig.alipayParameters(method: "alipay.trade.page.pay", biz: pageBiz(no), notifyURL: rig.notifyURL("alipay"),
                                         returnURL: returnURL)
        let payURL = SimulatedChannels.alipayGatewayURL(baseURL: rig.base) + "?" + String(decoding: FormEncoding.encode(pairs), as: UTF8.self)
        let cashier = try await send(.GET, payURL)
        #expect(cashier.status == 200)
        #expect(cashier.header("Content-Type")?.hasPrefix("text/html") == true)
        #expect(cashier.text.contains("Tea set 茶具") && cashier.text.contains("88.88"))
        #expect(cashier.text.contains(#"<button id="pay">Pay</button>"#) && cashier.text.contains(#"<button id="cancel">Cancel</button>"#))
        #expect(found(try await rig.query("alipay", no))?.status == .pending)

        let paid = try await send(.POST, rig.base + "/alipay/_cashier/pay",
                                  headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded")],
                                  body: Array("out_trade_no=\(no)".utf8))
        #expect(paid.status == 303)
        let location = try #require(paid.header("Location"))
        #expect(location.hasPrefix(returnURL + "?"))
        let query = String(location.dropFirst(returnURL.count + 1))
        #expect(queryFields(query)["method"] == "alipay.trade.page.pay.return")
        let back = try rig.alipayAdapter.verify(RawCallback(channel: "alipay", kind: .return, method: "GET", path: "/return/alipay",
                                                            query: query, sourceIP: "127.0.0.1"))
        #expect(back.evidence.outTradeNo == no && back.evidence.amountMinor == 8888)

        await rig.live.simulator.waitForNotifies()
        let arrivals = rig.inbox.arrivals("alipay")
        try #require(arrivals.count == 1)
        let notify = try rig.verify(arrivals[0], channel: "alipay")
        #expect(notify.evidence.status == .paid && notify.evidence.amountMinor == 8888)
        #expect(notify.evidence.payer == AlipayChannelSide.buyerID)
        #expect(notify.subject == "Tea set 茶具")
        #expect(queryFields(String(decoding: arrivals[0].body, as: UTF8.self))["passback_params"] == "cart%3D7")
        #expect(found(try await rig.query("alipay", no))?.status == .paid)

        // A paid trade cannot be closed.
        let late = try rig.alipayNode(
            try await rig.alipayCall(rig.alipayParameters(method: "alipay.trade.close", biz: #"{"out_trade_no":"\#(no)"}"#)),
            "alipay_trade_close_response")
        #expect(late["sub_code"]?.stringValue == "ACQ.TRADE_STATUS_ERROR")
        let trade = try await rig.trade("alipay", no)
        #expect(trade["status"]?.stringValue == "paid" && trade["scene"]?.stringValue == "page")
        await rig.stop()
    }

    @Test func wapCashierByPOSTedFormCancelsAndCloses() async throws {
        let rig = try await TradeRig.start()
        let no = "WAP0001"
        let returnURL = rig.inbox.baseURL + "/return/alipay"
        let pairs = rig.alipayParameters(method: "alipay.trade.wap.pay", biz: pageBiz(no, amount: "0.01", scene: "QUICK_WAP_WAY"),
                                         notifyURL: rig.notifyURL("alipay"), returnURL: returnURL)
        // The SDK's form: protocol parameters in the action's query, biz_content in the body.
        let action = SimulatedChannels.alipayGatewayURL(baseURL: rig.base) + "?"
            + String(decoding: FormEncoding.encode(pairs.filter { $0.key != "biz_content" }), as: UTF8.self)
        let cashier = try await send(.POST, action, headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded")],
                                     body: FormEncoding.encode(pairs.filter { $0.key == "biz_content" }))
        #expect(cashier.status == 200)
        #expect(cashier.text.contains(#"id="pay""#) && cashier.text.contains("0.01"))

        let cancelled = try await send(.POST, rig.base + "/alipay/_cashier/cancel", body: Array("out_trade_no=\(no)".utf8))
        #expect(cancelled.text.contains("not paid") && cancelled.text.contains(returnURL))
        #expect(found(try await rig.query("alipay", no))?.status == .pending)

        let closed = try rig.alipayNode(
            try await rig.alipayCall(rig.alipayParameters(method: "alipay.trade.close", biz: #"{"out_trade_no":"\#(no)"}"#)),
            "alipay_trade_close_response")
        #expect(closed["code"]?.stringValue == "10000" && closed["out_trade_no"]?.stringValue == no)
        #expect(found(try await rig.query("alipay", no))?.status == .closed)
        await rig.live.simulator.waitForNotifies()
        let notify = try rig.verify(try #require(rig.inbox.arrivals("alipay").first), channel: "alipay")
        #expect(notify.evidence.status == .closed)

        let refused = try await rig.control("/_sim/pay", #"{"channel":"alipay","out_trade_no":"\#(no)"}"#)
        #expect(refused.status == 409)
        await rig.stop()
    }

    @Test func precreateQRExistsOnceScanned() async throws {
        let rig = try await TradeRig.start()
        let no = "QR0001"
        let biz = #"{"out_trade_no":"\#(no)","total_amount":"12.30","subject":"Coffee"}"#
        let first = try rig.alipayNode(try await rig.alipayCall(rig.alipayParameters(method: "alipay.trade.precreate", biz: biz,
                                                                                  notifyURL: rig.notifyURL("alipay"))),
                                       "alipay_trade_precreate_response")
        #expect(first["code"]?.stringValue == "10000" && first["out_trade_no"]?.stringValue == no)
        let qrCode = try #require(first["qr_code"]?.stringValue)
        let again = try rig.alipayNode(try await rig.alipayCall(rig.alipayParameters(method: "alipay.trade.precreate", biz: biz,
                                                                                  notifyURL: rig.notifyURL("alipay"))),
                                       "alipay_trade_precreate_response")
        #expect(again["qr_code"]?.stringValue == qrCode)

        // Not scanned: Alipay has no trade yet.
        #expect(try await rig.query("alipay", no) == .notFound(outTradeNo: no))
        #expect(try await rig.trade("alipay", no)["exists"] == .bool(false))

        let phone = try await send(.GET, qrCode)
        #expect(phone.status == 200 && phone.text.contains(#"<button id="pay">Pay</button>"#))
        #expect(found(try await rig.query("alipay", no))?.status == .pending)

        let paid = try await rig.control("/_sim/pay", #"{"channel":"alipay","out_trade_no":"\#(no)"}"#)
        #expect(paid.status == 200)
        await rig.live.simulator.waitForNotifies()
        let notify = try rig.verify(try #require(rig.inbox.arrivals("alipay").first), channel: "alipay")
        #expect(notify.evidence.status == .paid && notify.evidence.amountMinor == 1230)
        #expect(found(try await rig.query("alipay", no))?.status == .paid)
        await rig.stop()
    }

    @Test func badSignatureAndBadFieldsAreRefusedInAlipaysFormat() async throws {
        let rig = try await TradeRig.start()
        let stranger = RSAPrivateKey.generate()
        let forged = rig.alipayParameters(method: "alipay.trade.page.pay", biz: pageBiz("BAD0001"), key: stranger)
        let cashier = try await send(.GET, SimulatedChannels.alipayGatewayURL(baseURL: rig.base) + "?"
                                     + String(decoding: FormEncoding.encode(forged), as: UTF8.self))
        #expect(try rig.alipayNode(cashier, "alipay_trade_page_pay_response")["sub_code"]?.stringValue == "isv.invalid-signature")

        let precreate = try await rig.alipayCall(rig.alipayParameters(
            method: "alipay.trade.precreate", biz: #"{"out_trade_no":"BAD0002","total_amount":"1.00","subject":"x"}"#, key: stranger))
        #expect(try rig.alipayNode(precreate, "alipay_trade_precreate_response")["sub_code"]?.stringValue == "isv.invalid-signature")

        let missing = try await rig.alipayCall(rig.alipayParameters(
            method: "alipay.trade.precreate", biz: #"{"out_trade_no":"BAD0003","subject":"x"}"#))
        let node = try rig.alipayNode(missing, "alipay_trade_precreate_response")
        #expect(node["code"]?.stringValue == "40002" && node["sub_msg"]?.stringValue == "total_amount")
        #expect(rig.live.simulator.order(channel: "alipay", outTradeNo: "BAD0002") == nil)
        await rig.stop()
    }
}

@Suite struct WeChatPayOrderCreationTests {
    func body(_ rig: TradeRig, _ no: String, total: Int = 8888, extra: String = "") -> [UInt8] {
        Array(#"{"appid":"\#(rig.channels.wechatAppID)","mchid":"\#(rig.channels.wechatMchID)","description":"Tea set","out_trade_no":"\#(no)","attach":"cart=7","notify_url":"\#(rig.notifyURL("wechatpay"))","amount":{"total":\#(total),"currency":"CNY"}\#(extra)}"#.utf8)
    }

    @Test func nativePrepayIsIdempotentAndThePhonePays() async throws {
        let rig = try await TradeRig.start()
        let no = "NATIVE0001"
        let created = try await rig.wechatPayCall("/v3/pay/transactions/native", body: body(rig, no))
        #expect(created.status == 200)
        try rig.verifyWeChatPayAnswer(created)
        let codeURL = try #require(try JSONValue.parse(created.body)["code_url"]?.stringValue)
        #expect(codeURL.hasPrefix("weixin://wxpay/bizpayurl?pr="))
        #expect(found(try await rig.query("wechatpay", no))?.status == .pending)

        let repeated = try await rig.wechatPayCall("/v3/pay/transactions/native", body: body(rig, no))
        #expect(repeated.status == 200)
        #expect(try JSONValue.parse(repeated.body)["code_url"]?.stringValue != codeURL)
        let conflicting = try await rig.wechatPayCall("/v3/pay/transactions/native", body: body(rig, no, total: 8889))
        #expect(conflicting.status == 400)
        try rig.verifyWeChatPayAnswer(conflicting)
        #expect(try JSONValue.parse(conflicting.body)["code"]?.stringValue == "INVALID_REQUEST")

        let forged = try await rig.wechatPayCall("/v3/pay/transactions/native", body: body(rig, "NATIVE0002"), key: RSAPrivateKey.generate())
        #expect(forged.status == 401 && forged.code == "SIGN_ERROR")
        let missing = try await rig.wechatPayCall("/v3/pay/transactions/jsapi", body: body(rig, "NATIVE0003"))
        #expect(missing.status == 400 && missing.code == "PARAM_ERROR")

        let encoded = String(decoding: FormEncoding.encode([FormEncoding.Pair(key: "code_url", value: Array(codeURL.utf8))]), as: UTF8.self)
        let phone = try await send(.GET, rig.base + "/wechatpay/_phone?" + encoded)
        #expect(phone.status == 200 && phone.text.contains(#"<button id="pay">Pay</button>"#) && phone.text.contains("88.88"))
        let paid = try await send(.POST, rig.base + "/wechatpay/_phone/pay", body: Array("out_trade_no=\(no)".utf8))
        #expect(paid.status == 200)

        await rig.live.simulator.waitForNotifies()
        let notify = try rig.verify(try #require(rig.inbox.arrivals("wechatpay").first), channel: "wechatpay")
        #expect(notify.evidence.status == .paid && notify.evidence.amountMinor == 8888)
        #expect(notify.evidence.payer == WeChatPayChannelSide.payerOpenID)
        #expect(found(try await rig.query("wechatpay", no))?.status == .paid)

        let close = try await rig.wechatPayCall("/v3/pay/transactions/out-trade-no/\(no)/close",
                                                body: Array(#"{"mchid":"\#(rig.channels.wechatMchID)"}"#.utf8))
        #expect(close.status == 400 && close.code == "ORDER_PAID")
        await rig.stop()
    }

    @Test func h5RedirectsAfterPayingAndJsapiCloses() async throws {
        let rig = try await TradeRig.start()
        let h5 = try await rig.wechatPayCall("/v3/pay/transactions/h5", body: body(
            rig, "H50001", extra: #","scene_info":{"payer_client_ip":"203.0.113.7","h5_info":{"type":"Wap"}}"#))
        #expect(h5.status == 200)
        try rig.verifyWeChatPayAnswer(h5)
        let h5URL = try #require(try JSONValue.parse(h5.body)["h5_url"]?.stringValue)
        let redirect = rig.inbox.baseURL + "/return/wechatpay?order=H50001"
        let phone = try await send(.GET, h5URL + "&redirect_url=" + FormEncoding.encodePathSegment(redirect))
        #expect(phone.status == 200 && phone.text.contains(#"id="pay""#))
        let paid = try await send(.POST, rig.base + "/wechatpay/_phone/pay", body: FormEncoding.encode([
            FormEncoding.Pair(key: "out_trade_no", value: Array("H50001".utf8)), FormEncoding.Pair(key: "redirect_url", value: Array(redirect.utf8)),
        ]))
        #expect(paid.status == 303 && paid.header("Location") == redirect)

        let openid = "oBuyer0000000000000000000001"
        let jsapi = try await rig.wechatPayCall("/v3/pay/transactions/jsapi", body: body(rig, "JSAPI0001", extra: #","payer":{"openid":"\#(openid)"}"#))
        let prepayID = try #require(try JSONValue.parse(jsapi.body)["prepay_id"]?.stringValue)
        #expect(prepayID.hasPrefix("wx"))
        let page = try await send(.GET, rig.base + "/wechatpay/_phone?prepay_id=" + prepayID)
        #expect(page.status == 200)
        let closeBody = Array(#"{"mchid":"\#(rig.channels.wechatMchID)"}"#.utf8)
        let closed = try await rig.wechatPayCall("/v3/pay/transactions/out-trade-no/JSAPI0001/close", body: closeBody)
        #expect(closed.status == 204)
        try rig.verifyWeChatPayAnswer(closed)
        #expect(found(try await rig.query("wechatpay", "JSAPI0001"))?.status == .closed)
        let twice = try await rig.wechatPayCall("/v3/pay/transactions/out-trade-no/JSAPI0001/close", body: closeBody)
        #expect(twice.status == 400 && twice.code == "ORDER_CLOSED")
        let unknown = try await rig.wechatPayCall("/v3/pay/transactions/out-trade-no/NOSUCH01/close", body: closeBody)
        #expect(unknown.status == 404 && unknown.code == "ORDER_NOT_EXIST")

        await rig.live.simulator.waitForNotifies()
        #expect(rig.inbox.arrivals("wechatpay").count == 1)
        await rig.stop()
    }
}

@Suite struct PointsDeductTests {
    func body(_ rig: TradeRig, _ no: String, user: String = "member-1", amount: String = "88.88") -> [UInt8] {
        Array(#"{"partner_id":"\#(rig.channels.pointsPartnerID)","out_trade_no":"\#(no)","user_id":"\#(user)","amount":"\#(amount)","currency":"CNY","subject":"Tea set","notify_url":"\#(rig.notifyURL("points"))"}"#.utf8)
    }

    @Test func deductPaidFailedAndProcessing() async throws {
        let rig = try await TradeRig.start()
        let paid = try await rig.pointsCall("/v2/deducts", body: body(rig, "PTS-1"))
        #expect(paid.status == 200)
        try rig.verifyPointsAnswer(paid)
        let answer = try JSONValue.parse(paid.body)
        #expect(answer["status"]?.stringValue == "PAID" && answer["amount"]?.stringValue == "88.88")
        #expect(found(try await rig.query("points", "PTS-1"))?.status == .paid)

        let repeated = try await rig.pointsCall("/v2/deducts", body: body(rig, "PTS-1"))
        #expect(repeated.status == 200 && repeated.body == paid.body)
        try rig.verifyPointsAnswer(repeated)
        let conflict = try await rig.pointsCall("/v2/deducts", body: body(rig, "PTS-1", amount: "1.00"))
        #expect(conflict.status == 409 && conflict.code == "IDEMPOTENCY_CONFLICT")

        #expect(try await rig.control("/_sim/points/outcomes", #"{"user_id":"poor","outcome":"failed"}"#).status == 200)
        let failed = try await rig.pointsCall("/v2/deducts", body: body(rig, "PTS-2", user: "poor"))
        let failedAnswer = try JSONValue.parse(failed.body)
        #expect(failedAnswer["status"]?.stringValue == "FAILED" && failedAnswer["code"]?.stringValue == "INSUFFICIENT_POINTS")
        #expect(found(try await rig.query("points", "PTS-2"))?.status == .closed)

        rig.live.simulator.setDeductOutcome(userID: "slow", .processing)
        let processing = try await rig.pointsCall("/v2/deducts", body: body(rig, "PTS-3", user: "slow"))
        #expect(try JSONValue.parse(processing.body)["status"]?.stringValue == "PROCESSING")
        #expect(found(try await rig.query("points", "PTS-3"))?.status == .pending)
        _ = try rig.live.simulator.pay(channel: "points", outTradeNo: "PTS-3")

        await rig.live.simulator.waitForNotifies()
        let notifies = try rig.inbox.arrivals("points").map { try rig.verify($0, channel: "points") }
        #expect(notifies.count == 3)
        #expect(notifies.first { $0.evidence.outTradeNo == "PTS-1" }?.evidence.status == .paid)
        #expect(notifies.first { $0.evidence.outTradeNo == "PTS-1" }?.evidence.payer == "member-1")
        #expect(notifies.first { $0.evidence.outTradeNo == "PTS-2" }?.evidence.status == .closed)
        #expect(notifies.first { $0.evidence.outTradeNo == "PTS-3" }?.evidence.status == .paid)

        let forged = try await rig.pointsCall("/v2/deducts", body: body(rig, "PTS-4"), secret: "another-secret-0123456789-0123456789")
        #expect(forged.status == 401 && forged.code == "SIGN_ERROR")
        let malformed = try await rig.pointsCall("/v2/deducts", body: body(rig, "PTS-5", amount: "88.888"))
        #expect(malformed.status == 400 && malformed.code == "PARAM_ERROR")
        try rig.verifyPointsAnswer(malformed)
        await rig.stop()
    }
}

@Suite struct NotifyAndCallFaultTests {
    func deduct(_ rig: TradeRig, _ no: String) async throws {
        let body = Array(#"{"partner_id":"\#(rig.channels.pointsPartnerID)","out_trade_no":"\#(no)","user_id":"m","amount":"5.00","currency":"CNY","subject":"x","notify_url":"\#(rig.notifyURL("points"))"}"#.utf8)
        let answer = try await rig.pointsCall("/v2/deducts", body: body)
        #expect(answer.status == 200)
    }

    @Test func neverSentSentTwiceAndRetried() async throws {
        let rig = try await TradeRig.start()
        let simulator = rig.live.simulator
        simulator.scriptNotifies(channel: "points", outTradeNo: "N-NEVER", [.neverSent])
        #expect(try await rig.control("/_sim/notify-faults",
                                      #"{"channel":"points","out_trade_no":"N-TWICE","faults":["sent_twice"]}"#).status == 200)
        try await deduct(rig, "N-NEVER")
        try await deduct(rig, "N-TWICE")
        await simulator.waitForNotifies()
        #expect(rig.inbox.arrivals.isEmpty == false)
        let bodies = rig.inbox.arrivals("points").map(\.body)
        let never = bodies.filter { String(decoding: $0, as: UTF8.self).contains("N-NEVER") }
        let twice = bodies.filter { String(decoding: $0, as: UTF8.self).contains("N-TWICE") }
        #expect(never.isEmpty)
        #expect(twice.count == 2 && twice[0] == twice[1])
        #expect(simulator.notifyCounts(channel: "points", outTradeNo: "N-NEVER").neverSent == 1)
        // Never notified, yet paid: the query knows.
        #expect(found(try await rig.query("points", "N-NEVER"))?.status == .paid)

        // Unacknowledged deliveries are retried.
        rig.inbox.refuse(next: 2)
        try await deduct(rig, "N-RETRY")
        await simulator.waitForNotifies()
        let retried = rig.inbox.arrivals("points").filter { String(decoding: $0.body, as: UTF8.self).contains("N-RETRY") }
        #expect(retried.count == 3)
        let counts = simulator.notifyCounts(channel: "points", outTradeNo: "N-RETRY")
        #expect(counts.attempts == 3 && counts.acknowledged == 1)
        let trade = try await rig.trade("points", "N-RETRY")
        #expect(trade["notifies"]?["acknowledged"]?.int64Value == 1)

        // A default rate, set over the control route.
        #expect(try await rig.control("/_sim/notify-faults", #"{"never_sent_rate":1}"#).status == 200)
        try await deduct(rig, "N-RATE")
        await simulator.waitForNotifies()
        #expect(rig.inbox.arrivals("points").allSatisfy { !String(decoding: $0.body, as: UTF8.self).contains("N-RATE") })
        await rig.stop()
    }

    @Test func callFaultsAndALostAnswer() async throws {
        let rig = try await TradeRig.start()
        let simulator = rig.live.simulator
        var defaults = simulator.defaultCallBehaviour
        defaults.holdDuration = .milliseconds(200)
        simulator.defaultCallBehaviour = defaults
        simulator.scriptCalls(channel: "points", outTradeNo: "F-1", [.httpError(503), .lostAnswer])
        let body = Array(#"{"partner_id":"\#(rig.channels.pointsPartnerID)","out_trade_no":"F-1","user_id":"m","amount":"5.00","currency":"CNY","subject":"x","notify_url":"\#(rig.notifyURL("points"))"}"#.utf8)
        #expect(try await rig.pointsCall("/v2/deducts", body: body).status == 503)
        #expect(simulator.order(channel: "points", outTradeNo: "F-1") == nil)
        // The deduct happened, but its answer never came: only the query can tell.
        #expect(try await rig.pointsCall("/v2/deducts", body: body).status == 504)
        #expect(found(try await rig.query("points", "F-1"))?.status == .paid)
        let repeated = try await rig.pointsCall("/v2/deducts", body: body)
        #expect(try JSONValue.parse(repeated.body)["status"]?.stringValue == "PAID")
        #expect(simulator.callCount(channel: "points") == 3)

        #expect(try await rig.control("/_sim/call-faults", #"{"error_rate":1}"#).status == 200)
        let precreate = try await rig.alipayCall(rig.alipayParameters(
            method: "alipay.trade.precreate", biz: #"{"out_trade_no":"F2","total_amount":"1.00","subject":"x"}"#))
        #expect(precreate.status == 500)
        await rig.stop()
    }
}
