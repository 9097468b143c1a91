import ChannelClients
import Foundation
import PayhookCore
import Simulator
import Testing
@testable import Channels

@Suite struct AlipayTests {
    let config: AlipayConfiguration
    let adapter: AlipayAdapter

    init() throws {
        config = AlipayConfiguration(
            channelID: "alipay", appID: "2021000000000001", sellerID: "2088000000000001",
            alipayPublicKey: try RSAPublicKey(pemRepresentation: Fixture.text("alipay_public.pem")),
            appPrivateKey: try RSAPrivateKey(pemRepresentation: Fixture.text("app_private_pkcs1.pem")),
            gatewayURL: "http://127.0.0.1:1/gateway.do", allowedIPs: [CIDR.parse("127.0.0.0/8")!, CIDR.parse("::1/128")!])
        adapter = AlipayAdapter(configuration: config)
    }

    func notify(_ body: [UInt8], ip: String = "127.0.0.1") -> RawCallback {
        RawCallback(kind: .notify, method: "POST", path: "/notify/alipay",
                    headers: [HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")],
                    body: body, sourceIP: ip)
    }

    /// Replaces one parameter's encoded value in a form body, keeping the original signature.
    func tamper(_ body: String, _ key: String, _ value: String) -> [UInt8] {
        Array(body.split(separator: "&").map { part in
            part.hasPrefix(key + "=") ? "\(key)=\(value)" : String(part)
        }.joined(separator: "&").utf8)
    }

    @Test func validUTF8Notify() throws {
        let n = try adapter.verify(notify(try Fixture.bytes("alipay_notify_utf8.form")))
        #expect(n.channel == "alipay")
        #expect(n.channelType == .alipay)
        #expect(n.outTradeNo == "ORDER-20261127-0001")
        #expect(n.channelTradeNo == "2026112722001400001000012345")
        #expect(n.status == .paid)
        #expect(n.amountMinor == 8888)
        #expect(n.currency == "CNY")
        #expect(n.merchant == MerchantIdentity(appID: "2021000000000001", merchantID: "2088000000000001"))
        #expect(n.eventID == "2026112700222100001012345678901234")
        #expect(n.subject == "测试商品 Payhook #1")
        // 2026-11-27 10:00:05 +08:00
        #expect(n.paidAt == Date(timeIntervalSince1970: 1_795_744_805))
    }

    @Test func validGBKNotifyVerifiesOverGBKBytes() throws {
        let body = try Fixture.bytes("alipay_notify_gbk.form")
        // The subject is percent-encoded GBK, not UTF-8.
        #expect(String(decoding: body, as: UTF8.self).contains("subject=%B2%E2%CA%D4"))
        let n = try adapter.verify(notify(body))
        #expect(n.amountMinor == 8888)
        #expect(n.subject == "测试商品 Payhook #1")
    }

    @Test func tamperedBodyIsBadSignature() throws {
        let body = try Fixture.text("alipay_notify_utf8.form")
        expectRejection(.badSignature) { () throws(Rejection) in try adapter.verify(notify(tamper(body, "subject", "free+stuff"))) }
        expectRejection(.badSignature) { () throws(Rejection) in try adapter.verify(notify(tamper(body, "out_trade_no", "ORDER-OTHER"))) }
        // An added parameter changes the signed text too.
        expectRejection(.badSignature) { () throws(Rejection) in try adapter.verify(notify(Array((body + "&extra=1").utf8))) }
    }

    @Test func tamperedAmountIsBadSignature() throws {
        let body = try Fixture.text("alipay_notify_utf8.form")
        expectRejection(.badSignature) { () throws(Rejection) in try adapter.verify(notify(tamper(body, "total_amount", "0.01"))) }
    }

    @Test func wrongKeyIsBadSignature() throws {
        expectRejection(.badSignature) { () throws(Rejection) in try adapter.verify(notify(try! Fixture.bytes("alipay_notify_wrong_key.form"))) }
    }

    @Test func sha1SignTypeRefusedUnlessConfigured() throws {
        let body = try Fixture.bytes("alipay_notify_rsa1.form")
        expectRejection(.unsupportedSignType) { () throws(Rejection) in try adapter.verify(notify(body)) }
        var allowing = config
        allowing.allowSHA1SignType = true
        let n = try AlipayAdapter(configuration: allowing).verify(notify(body))
        #expect(n.status == .paid)
        let other = try Fixture.text("alipay_notify_utf8.form")
        expectRejection(.unsupportedSignType) { () throws(Rejection) in try adapter.verify(notify(tamper(other, "sign_type", "MD5"))) }
    }

    @Test func merchantMismatch() throws {
        var otherApp = config
        otherApp.appID = "2021000000000999"
        expectRejection(.merchantMismatch) { () throws(Rejection) in
            try AlipayAdapter(configuration: otherApp).verify(notify(try! Fixture.bytes("alipay_notify_utf8.form")))
        }
        var otherSeller = config
        otherSeller.sellerID = "2088000000000999"
        expectRejection(.merchantMismatch) { () throws(Rejection) in
            try AlipayAdapter(configuration: otherSeller).verify(notify(try! Fixture.bytes("alipay_notify_utf8.form")))
        }
        var noSeller = config
        noSeller.sellerID = nil
        #expect(throws: Never.self) { try AlipayAdapter(configuration: noSeller).verify(notify(try Fixture.bytes("alipay_notify_utf8.form"))) }
    }

    @Test func malformed() throws {
        let body = try Fixture.text("alipay_notify_utf8.form")
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(notify(Array("a=%zz".utf8))) }
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(notify(tamper(body, "sign", "%%%"))) }
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(notify(tamper(body, "sign", "not*base64"))) }
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(notify(tamper(body, "charset", "latin1"))) }
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(notify([])) }
        // A repeated parameter makes the signed text ambiguous.
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(notify(Array((body + "&total_amount=1.00").utf8))) }
    }

    @Test func ipAllowlist() throws {
        let body = try Fixture.bytes("alipay_notify_utf8.form")
        expectRejection(.ipNotAllowed) { () throws(Rejection) in try adapter.verify(notify(body, ip: "10.1.2.3")) }
        #expect(throws: Never.self) { try adapter.verify(notify(body, ip: "::1")) }
    }

    // Malformed amounts in a genuinely signed notify are permanent `malformed` rejections.
    @Test(arguments: ["1e3", "-1", "0.001", "88.8.8", "", " 1", "1.", "abc", "99999999999999999999"])
    func malformedSignedAmount(_ amount: String) throws {
        let side = AlipayChannelSide(
            alipayPrivateKey: try RSAPrivateKey(pemRepresentation: Fixture.text("alipay_private_pkcs8.pem")),
            appPublicKey: nil, appID: config.appID, sellerID: config.sellerID!)
        let order = ChannelOrder(outTradeNo: "O-1", channelTradeNo: "T-1", status: .paid, amountMinor: 100)
        // Re-sign with the odd amount by building from pairs directly.
        let body = String(decoding: side.notifyBody(for: order, notifyID: "n1", notifyTime: Date()), as: UTF8.self)
        let pairs = FormEncoding.parse(body)!.filter { $0.key != "sign" && $0.key != "sign_type" && $0.key != "total_amount" }
            + [FormEncoding.Pair(key: "total_amount", value: Array(amount.utf8))]
        let key = try RSAPrivateKey(pemRepresentation: Fixture.text("alipay_private_pkcs8.pem"))
        let signed = pairs + [
            FormEncoding.Pair(key: "sign", value: Array(AlipaySignature.base64(key.signSHA256(AlipaySignature.signContent(pairs)!)).utf8)),
            FormEncoding.Pair(key: "sign_type", value: Array("RSA2".utf8)),
        ]
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(notify(FormEncoding.encode(signed))) }
    }

    @Test func returnKindReadsQueryAndIsPending() throws {
        let side = AlipayChannelSide(
            alipayPrivateKey: try RSAPrivateKey(pemRepresentation: Fixture.text("alipay_private_pkcs8.pem")),
            appPublicKey: nil, appID: config.appID, sellerID: config.sellerID!)
        let order = ChannelOrder(outTradeNo: "O-2", channelTradeNo: "T-2", status: .paid, amountMinor: 1)
        let query = String(decoding: side.notifyBody(for: order, notifyID: "n", notifyTime: Date()), as: UTF8.self)
        let n = try adapter.verify(RawCallback(kind: .return, method: "GET", path: "/return/alipay", query: query, sourceIP: "127.0.0.1"))
        #expect(n.outTradeNo == "O-2" && n.amountMinor == 1 && n.status == .paid)
        // The buyer's browser brings a return from anywhere: allowed_ips hold the channel's servers only.
        let fromTheBuyer = try adapter.verify(RawCallback(kind: .return, method: "GET", path: "/return/alipay", query: query,
                                                          sourceIP: "198.51.100.77"))
        #expect(fromTheBuyer.outTradeNo == "O-2")
        expectRejection(.ipNotAllowed) { () throws(Rejection) in
            try adapter.verify(RawCallback(kind: .notify, method: "POST", path: "/notify/alipay",
                                           body: Array(query.utf8), sourceIP: "198.51.100.77"))
        }
    }

    @Test func roundTripThroughChannelSide() throws {
        let side = AlipayChannelSide(
            alipayPrivateKey: try RSAPrivateKey(pemRepresentation: Fixture.text("alipay_private_pkcs8.pem")),
            appPublicKey: nil, appID: config.appID, sellerID: config.sellerID!)
        for status in [PaymentStatus.paid, .closed, .pending, .other("TRADE_REFUND")] {
            for charset in [AlipayChannelSide.Charset.utf8, .gbk] {
                let order = ChannelOrder(outTradeNo: "O-\(status)", channelTradeNo: "T-9", status: status, amountMinor: 123_456_789,
                                         paidAt: Date(timeIntervalSince1970: 1_800_000_000), subject: "中文 subject")
                let n = try adapter.verify(notify(side.notifyBody(for: order, notifyID: "N-1", notifyTime: Date(), charset: charset)))
                #expect(n.status == status && n.amountMinor == 123_456_789 && n.subject == "中文 subject")
                #expect(n.paidAt == Date(timeIntervalSince1970: 1_800_000_000))
            }
        }
    }

    @Test func gopayPublicResponseVector() throws {
        let key = try RSAPublicKey(pemRepresentation: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAp8gueNlkbiDidz6FBQEBpqoRgH8h7JtsPtYW0nzAqy1MME4mFnDSMfSKlreUomS3a55gmBopL1eF4/Km/dEnaL5tCY9+24SKn1D4iyls+lvz/ZjvUjVwxoUYBh8kkcxMZSDeDz8//o+9qZTrICVP2a4sBB8T0XmU4gxfw8FsmtoomBH1nLk3AO7wgRN2a3+SRSAmxrhIGDmF1lljSlhY32eJpJ2TZQKaWNW+7yDBU/0Wt3kQVY84vr14yYagnSCiIfqyVFqePayRtmVJDr5qvSXr51tdqs2zKZCu+26X7JAF4BSsaq4gmY5DmDTm4TohCnBduI1+bPGD+igVmtl05wIDAQAB")
        let signed = #"{"code":"10000","msg":"Success","buyer_logon_id":"854***@qq.com","buyer_pay_amount":"0.01","buyer_user_id":"2088102363632794","fund_bill_list":[{"amount":"0.01","fund_channel":"PCREDIT"}],"gmt_payment":"2019-08-29 20:14:05","invoice_amount":"0.01","out_trade_no":"GZ201901301040361012","point_amount":"0.00","receipt_amount":"0.01","total_amount":"0.01","trade_no":"2019082922001432790585537960"}"#
        let sign = "bk3SzX0CZRI811IJioS2XKQHcgMixUT8mYyGQj+vcOAQas7GIYi6LpykqqSc3m7+yvqoG0TdX/c2JjYnpw/J53JxtC2IC4vsLuIPIgghVo5qafsfSxEJ22w20RZDatI2dYqFVcj8Jp+4aesQ8zMMNw7cX9NLyk7kw3DecYeyQp+zrZMueZPqLh88Z+54G+e6QuSU++0ouqQVd4PkpPqy6YI+8MdMUX4Ve0jOQxMmYH8BC6n5ZsTH/uEaLEtzYVZdSw/xdSQ7K1SH73aEH8XbRYx6rL7RkKksrdvhezX+ThDjQ+fTWjvNFrGcg3fmqXRy2elvoalu+BQmqlkWWjEJYA=="
        let signature = try #require(AlipaySignature.decodeBase64(sign))
        #expect(key.isValidSHA256Signature(signature, for: Array(signed.utf8)))
        #expect(!key.isValidSHA256Signature(signature, for: Array(signed.replacingOccurrences(of: "0.01", with: "0.02").utf8)))

        // And through the response reader: the raw node text is what is verified.
        var cfg = config
        cfg.alipayPublicKey = key
        let response = #"{"alipay_trade_query_response":"# + signed + #","sign":""# + sign + #""}"#
        // The vector has no trade_status, so the reader verifies and then reports the missing field.
        expectQueryError(.permanent, .malformedResponse) { () throws(QueryError) in
            try AlipayQuery.interpret(ChannelResponse(status: 200, headers: [], body: Array(response.utf8)), configuration: cfg, outTradeNo: "GZ201901301040361012")
        }
        let forged = response.replacingOccurrences(of: #""total_amount":"0.01""#, with: #""total_amount":"9.01""#)
        expectQueryError(.permanent, .badSignature) { () throws(QueryError) in
            try AlipayQuery.interpret(ChannelResponse(status: 200, headers: [], body: Array(forged.utf8)), configuration: cfg, outTradeNo: "GZ201901301040361012")
        }
    }

    @Test func queryResponseFixtures() throws {
        let ok = try AlipayQuery.interpret(ChannelResponse(status: 200, headers: [], body: Fixture.bytes("alipay_query_response.json")),
                                           configuration: config, outTradeNo: "ORDER-20261127-0001")
        guard case .found(let order) = ok else { Issue.record("\(ok)"); return }
        #expect(order.amountMinor == 8888 && order.status == .paid && order.channelTradeNo == "2026112722001400001000012345")
        #expect(order.currency == "CNY")
        let missing = try AlipayQuery.interpret(ChannelResponse(status: 200, headers: [], body: Fixture.bytes("alipay_query_not_exist.json")),
                                                configuration: config, outTradeNo: "ORDER-MISSING")
        #expect(missing == .notFound(outTradeNo: "ORDER-MISSING"))
        // Re-serialized (spaces added) text no longer verifies: the raw text is what counts.
        let spaced = String(decoding: try Fixture.bytes("alipay_query_response.json"), as: UTF8.self)
            .replacingOccurrences(of: #""code":"10000""#, with: #""code": "10000""#)
        expectQueryError(.permanent, .badSignature) { () throws(QueryError) in
            try AlipayQuery.interpret(ChannelResponse(status: 200, headers: [], body: Array(spaced.utf8)), configuration: config, outTradeNo: "ORDER-20261127-0001")
        }
    }

    @Test func queryErrorClassification() throws {
        func run(_ status: Int, _ text: String) throws(QueryError) -> OrderQueryResult {
            try AlipayQuery.interpret(ChannelResponse(status: status, headers: [], body: Array(text.utf8)), configuration: config, outTradeNo: "X")
        }
        expectQueryError(.transient, .httpStatus) { () throws(QueryError) in try run(502, "") }
        expectQueryError(.permanent, .httpStatus) { () throws(QueryError) in try run(403, "") }
        expectQueryError(.permanent, .malformedResponse) { () throws(QueryError) in try run(200, "<html>") }
        expectQueryError(.transient, .channelError) { () throws(QueryError) in
            try run(200, #"{"error_response":{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}}"#)
        }
        expectQueryError(.permanent, .channelError) { () throws(QueryError) in
            try run(200, #"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}"#)
        }
        expectQueryError(.permanent, .badSignature) { () throws(QueryError) in
            try run(200, #"{"alipay_trade_query_response":{"code":"10000","out_trade_no":"X","total_amount":"1.00","trade_status":"TRADE_SUCCESS"}}"#)
        }
    }

    @Test func queryRoundTripThroughChannelSide() async throws {
        let side = AlipayChannelSide(
            alipayPrivateKey: try RSAPrivateKey(pemRepresentation: Fixture.text("alipay_private_pkcs8.pem")),
            appPublicKey: try RSAPublicKey(pemRepresentation: Fixture.text("app_public.pem")),
            appID: config.appID, sellerID: config.sellerID!)
        let order = ChannelOrder(outTradeNo: "O-77", channelTradeNo: "T-77", status: .closed, amountMinor: 5)
        let transport = InProcessTransport { request in side.answerQuery(request) { $0 == "O-77" ? order : nil } }
        let client = ChannelClient(.alipay(AlipayAdapter(configuration: config)), transport: transport)
        let found = try await client.queryOrder(outTradeNo: "O-77")
        #expect(found == .found(OrderEvidence(channel: "alipay", outTradeNo: "O-77", channelTradeNo: "T-77", status: .closed, amountMinor: 5,
                                             currency: "CNY", merchant: MerchantIdentity(appID: nil, merchantID: nil), paidAt: nil,
                                             payer: AlipayChannelSide.buyerID)), "buyer_user_id is the payer")
        #expect(try await client.queryOrder(outTradeNo: "O-78") == .notFound(outTradeNo: "O-78"))
        // A request signed with another app key is refused by the channel side.
        let wrongSide = AlipayChannelSide(alipayPrivateKey: side.alipayPrivateKey,
                                          appPublicKey: try RSAPublicKey(pemRepresentation: Fixture.text("other_public.pem")),
                                          appID: config.appID, sellerID: "s")
        let refused = ChannelClient(.alipay(AlipayAdapter(configuration: config)), transport: InProcessTransport { wrongSide.answerQuery($0) { _ in order } })
        await #expect(throws: QueryError.self) { try await refused.queryOrder(outTradeNo: "O-77") }
    }

    @Test func queryRequestShape() throws {
        let request = try AlipayQuery.makeRequest(configuration: config, outTradeNo: "O-1", now: Date(timeIntervalSince1970: 1_795_744_806))
        let pairs = try #require(FormEncoding.parse(request.body))
        let fields = AlipayAdapter.Fields(pairs)
        #expect(fields.ascii("method") == "alipay.trade.query")
        #expect(fields.ascii("timestamp") == "2026-11-27 10:00:06")
        #expect(fields.ascii("charset") == "utf-8" && fields.ascii("sign_type") == "RSA2" && fields.ascii("version") == "1.0")
        #expect(fields.raw("biz_content").map { String(decoding: $0, as: UTF8.self) } == #"{"out_trade_no":"O-1"}"#)
        let appPublic = try RSAPublicKey(pemRepresentation: Fixture.text("app_public.pem"))
        let sig = try #require(AlipaySignature.decodeBase64(fields.raw("sign")!))
        #expect(appPublic.isValidSHA256Signature(sig, for: AlipaySignature.signContent(pairs, excludingSignType: false)!))
    }

    @Test func realTransportClassifiesRefusedConnectionAsTransient() async throws {
        // gateway_url points at 127.0.0.1:1, where nothing listens.
        var quick = config
        quick.queryTimeout = .milliseconds(300)
        let live = ChannelClient(.alipay(AlipayAdapter(configuration: quick)), transport: HTTPClientTransport())
        do {
            _ = try await live.queryOrder(outTradeNo: "O-1")
            Issue.record("expected a connection failure")
        } catch {
            #expect(error.kind == .transient, "\(error)")
        }
    }
}
