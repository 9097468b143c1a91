import Channels
import Foundation
import PayhookCore
import SiteOrders
import Testing

/// The request's rules, without I/O: every refusal has its code, and a good request reads back exactly.
@Suite struct OrderRequestTests {
    static let channels: [String: ChannelType] = ["alipay": .alipay, "wechatpay": .wechatpayV3, "points": .points]
    static let now = Date(timeIntervalSince1970: 1_795_749_606)

    static func parse(_ json: String) throws(OrderError) -> OrderRequest {
        try OrderRequest.parse(Array(json.utf8), channels: channels, now: now)
    }

    static func code(_ json: String) -> String? {
        do { _ = try parse(json); return nil } catch { return error.code }
    }

    @Test func aGoodRequestReadsBackExactly() throws {
        let request = try Self.parse("""
            {"out_trade_no":"ORDER_1","channel":"alipay","scene":"page","amount":"88.88","subject":"Tea",
             "description":"Two boxes","expires_in_seconds":900,"return_url":"https://shop.example/done","attach":"a=1"}
            """)
        #expect(request.amountMinor == 8888)
        #expect(request.currency == "CNY")
        #expect(request.scene == .page)
        #expect(request.channelType == .alipay)
        #expect(request.expiresInSeconds == 900)
        #expect(request.returnURL == "https://shop.example/done")
    }

    @Test(arguments: [
        (#"{"channel":"alipay","scene":"page","amount":"1e3","subject":"x"}"#, "invalid_amount"),
        (#"{"channel":"alipay","scene":"page","amount":"-1","subject":"x"}"#, "invalid_amount"),
        (#"{"channel":"alipay","scene":"page","amount":"0.001","subject":"x"}"#, "invalid_amount"),
        (#"{"channel":"alipay","scene":"page","amount":1.5,"subject":"x"}"#, "invalid_amount"),
        (#"{"channel":"alipay","scene":"page","amount":" 1","subject":"x"}"#, "invalid_amount"),
        (#"{"channel":"alipay","scene":"page","amount":"0","subject":"x"}"#, "amount_out_of_range"),
        (#"{"channel":"alipay","scene":"page","amount":"100000000.01","subject":"x"}"#, "amount_out_of_range"),
        (#"{"channel":"wechatpay","scene":"native","amount":"21474836.48","subject":"x"}"#, "amount_out_of_range"),
        (#"{"channel":"nope","scene":"page","amount":"1.00","subject":"x"}"#, "unknown_channel"),
        (#"{"channel":"alipay","scene":"jsapi","amount":"1.00","subject":"x"}"#, "unsupported_scene"),
        (#"{"channel":"points","scene":"page","amount":"1.00","subject":"x"}"#, "unsupported_scene"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","currency":"USD"}"#, "unsupported_currency"),
        (#"{"channel":"wechatpay","scene":"native","amount":"1.00","subject":"x","out_trade_no":"abc"}"#, "invalid_out_trade_no"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","out_trade_no":"A-1"}"#, "invalid_out_trade_no"),
        (#"{"channel":"points","scene":"deduct","amount":"1.00","subject":"x","out_trade_no":"A 1"}"#, "invalid_out_trade_no"),
        (#"{"channel":"wechatpay","scene":"jsapi","amount":"1.00","subject":"x"}"#, "missing_payer_field"),
        (#"{"channel":"wechatpay","scene":"h5","amount":"1.00","subject":"x","payer":{"openid":"o"}}"#, "missing_payer_field"),
        (#"{"channel":"points","scene":"deduct","amount":"1.00","subject":"x"}"#, "missing_payer_field"),
        (#"{"channel":"wechatpay","scene":"h5","amount":"1.00","subject":"x","payer":{"client_ip":"1.2.3"}}"#, "invalid_field"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00"}"#, "missing_field"),
        (#"{"scene":"page","amount":"1.00","subject":"x"}"#, "missing_field"),
        (#"{"channel":"alipay","scene":"page","subject":"x"}"#, "missing_field"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","price":"1"}"#, "unknown_field"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","payer":{"name":"n"}}"#, "unknown_field"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","subject":"y"}"#, "invalid_field"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":""}"#, "invalid_field"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":7}"#, "invalid_field"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","return_url":"javascript:alert(1)"}"#, "invalid_field"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","expires_in_seconds":10}"#, "invalid_expiry"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","expires_in_seconds":1.5}"#, "invalid_expiry"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","expires_at":"tomorrow"}"#, "invalid_expiry"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","expires_at":"2020-01-01T00:00:00Z"}"#, "invalid_expiry"),
        (#"{"channel":"alipay","scene":"page","amount":"1.00","subject":"x","expires_in_seconds":900,"expires_at":"2026-11-27T12:00:00+08:00"}"#, "invalid_expiry"),
        ("not json", "invalid_json"),
        (#"["alipay"]"#, "invalid_json"),
        ("", "invalid_json"),
    ])
    func everyRefusalHasItsCode(json: String, code: String) {
        #expect(Self.code(json) == code, "\(json)")
    }

    @Test func theDigestIsTheRequestNotTheClock() throws {
        let a = try Self.parse(#"{"channel":"alipay","scene":"page","amount":"1.50","subject":"x","expires_in_seconds":900}"#)
        let later = try OrderRequest.parse(
            Array(#"{"subject":"x","amount":"1.5","channel":"alipay","scene":"page","expires_in_seconds":900}"#.utf8),
            channels: Self.channels, now: Self.now.addingTimeInterval(30))
        #expect(a.digest == later.digest)
        let other = try Self.parse(#"{"channel":"alipay","scene":"page","amount":"1.51","subject":"x","expires_in_seconds":900}"#)
        #expect(a.digest != other.digest)
        let wap = try Self.parse(#"{"channel":"alipay","scene":"wap","amount":"1.50","subject":"x","expires_in_seconds":900}"#)
        #expect(a.digest != wap.digest)
    }

    @Test func madeNumbersFitEveryChannel() {
        for _ in 0..<200 {
            let number = OrderRules.makeOutTradeNo(now: Self.now)
            #expect(number.hasPrefix("PH20261127"))
            for type in ChannelType.allCases { #expect(OrderRules.outTradeNoProblem(number, type: type) == nil) }
        }
        #expect(OrderRules.makeOutTradeNo(now: Self.now) != OrderRules.makeOutTradeNo(now: Self.now))
    }

    @Test func payerDetailsRoundTripThroughTheStoredJSON() throws {
        let request = try Self.parse(#"{"channel":"wechatpay","scene":"h5","amount":"1.00","subject":"x","payer":{"client_ip":"203.0.113.9","h5_type":"iOS"}}"#)
        #expect(OrderRequest.payer(fromJSON: request.payerJSON) == request.payer)
        #expect(request.payer.clientIP == "203.0.113.9")
    }
}
