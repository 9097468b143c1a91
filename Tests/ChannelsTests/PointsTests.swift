import ChannelClients
import Foundation
import PayhookCore
import Simulator
import Testing
@testable import Channels

@Suite struct PointsTests {
    let config: PointsConfiguration
    let adapter: PointsAdapter
    let signedAt = Date(timeIntervalSince1970: 1_795_749_606)

    init() throws {
        config = PointsConfiguration(
            channelID: "points", partnerID: "site-001",
            hmacSecret: SharedSecret(text: try Fixture.text("points.secret").trimmingCharacters(in: .whitespacesAndNewlines)),
            apiBaseURL: "https://points.partner.example/api/", allowedIPs: [CIDR.parse("192.0.2.0/24")!])
        adapter = PointsAdapter(configuration: config)
    }

    func callback(at: Date? = nil, ip: String = "192.0.2.7", headers edit: ([HeaderField]) -> [HeaderField] = { $0 }, body bodyEdit: ([UInt8]) -> [UInt8] = { $0 }) throws -> RawCallback {
        let message = try Fixture.signedMessage("points_notify.json")
        return RawCallback(headers: edit(message.headers), body: bodyEdit(message.body), sourceIP: ip, receivedAt: at ?? signedAt)
    }

    func replacing(_ name: String, with value: String) -> ([HeaderField]) -> [HeaderField] {
        { $0.map { $0.name.lowercased() == name.lowercased() ? HeaderField(name: $0.name, value: value) : $0 } }
    }

    var side: PointsChannelSide { PointsChannelSide(partnerID: "site-001", hmacSecret: config.hmacSecret) }

    @Test func validFixtureNotify() throws {
        let n = try adapter.verify(try callback())
        #expect(n.channelType == .points && n.channel == "points")
        #expect(n.outTradeNo == "ORDER-20261127-0003" && n.channelTradeNo == "PT202611270000000001")
        #expect(n.status == .paid && n.amountMinor == 8888 && n.currency == "CNY" && n.points == 8888)
        #expect(n.merchant == MerchantIdentity(appID: nil, merchantID: "site-001"))
        #expect(n.eventID == "PEV-20261127-000001")
        #expect(n.paidAt == Date(timeIntervalSince1970: 1_795_744_805))
    }

    @Test func upperCaseHexSignatureIsAccepted() throws {
        let raw = try callback()
        let upper = try callback(headers: replacing("X-Points-Signature", with: raw.header("x-points-signature")!.uppercased()))
        #expect(throws: Never.self) { try adapter.verify(upper) }
    }

    @Test func tamperedBodyAndAmount() throws {
        expectRejection(.badSignature) { () throws(Rejection) in
            try adapter.verify(try! callback(body: { Array(String(decoding: $0, as: UTF8.self).replacingOccurrences(of: "\"88.88\"", with: "\"0.01\"").utf8) }))
        }
        expectRejection(.badSignature) { () throws(Rejection) in try adapter.verify(try! callback(body: { $0 + [0x20] })) }
    }

    @Test func wrongSecretIsBadSignature() throws {
        let other = PointsChannelSide(partnerID: "site-001", hmacSecret: SharedSecret(text: "another-secret-another-secret-00"))
        let message = other.notify(for: ChannelOrder(outTradeNo: "P-1", channelTradeNo: "PT-1", status: .paid, amountMinor: 1), eventID: "E", timestamp: signedAt)
        expectRejection(.badSignature) { () throws(Rejection) in
            try adapter.verify(RawCallback(headers: message.headers, body: message.body, sourceIP: "192.0.2.1", receivedAt: signedAt))
        }
    }

    @Test func rejections() throws {
        for header in ["X-Points-Partner-Id", "X-Points-Timestamp", "X-Points-Nonce", "X-Points-Signature"] {
            expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(try! callback(headers: { $0.filter { $0.name != header } })) }
        }
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(try! callback(headers: replacing("X-Points-Signature", with: "zz"))) }
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(try! callback(headers: replacing("X-Points-Nonce", with: "bad nonce!"))) }
        expectRejection(.unsupportedSignType) { () throws(Rejection) in try adapter.verify(try! callback(headers: replacing("X-Points-Signature-Type", with: "MD5"))) }
        expectRejection(.staleTimestamp) { () throws(Rejection) in try adapter.verify(try! callback(at: signedAt.addingTimeInterval(-301))) }
        expectRejection(.ipNotAllowed) { () throws(Rejection) in try adapter.verify(try! callback(ip: "198.51.100.1")) }
        // A different partner header with our secret's valid signature: mismatch, checked after the proof.
        let s = PointsChannelSide(partnerID: "site-999", hmacSecret: config.hmacSecret)
        let message = s.notify(for: ChannelOrder(outTradeNo: "P-1", channelTradeNo: "PT-1", status: .paid, amountMinor: 1), eventID: "E", timestamp: signedAt)
        expectRejection(.merchantMismatch) { () throws(Rejection) in
            try adapter.verify(RawCallback(headers: message.headers, body: message.body, sourceIP: "192.0.2.1", receivedAt: signedAt))
        }
        expectRejection(.unsupportedKind) { () throws(Rejection) in try adapter.verify(RawCallback(kind: .return, sourceIP: "192.0.2.1")) }
    }

    @Test(arguments: [#"{"event_id":"E","partner_id":"site-001","out_trade_no":"P","status":"PAID","amount":88.88}"#,
                      #"{"event_id":"E","partner_id":"site-001","out_trade_no":"P","status":"PAID","amount":"1e3"}"#,
                      #"{"event_id":"E","partner_id":"site-001","out_trade_no":"P","status":"PAID","amount":"-1"}"#,
                      #"{"event_id":"E","partner_id":"site-001","out_trade_no":"P","status":"PAID","amount":"0.001"}"#,
                      #"{"event_id":"E","partner_id":"site-001","out_trade_no":"P","status":"PAID","amount":"1","points":-5}"#,
                      #"{"event_id":"E","partner_id":"site-001","out_trade_no":"P","status":"PAID","amount":"1","points":1.5}"#,
                      #"{"partner_id":"site-001","out_trade_no":"P","status":"PAID","amount":"1"}"#,
                      #"{"event_id":"E","partner_id":"site-001","status":"PAID","amount":"1"}"#,
                      #"{"event_id":"E","partner_id":"site-001","out_trade_no":"P","status":"PAID","amount":"1","paid_at":"yesterday"}"#,
                      "not json", "[]"])
    func malformedSignedBodies(_ body: String) throws {
        let bytes = Array(body.utf8)
        let raw = RawCallback(headers: side.signedHeaders(body: bytes, timestamp: signedAt), body: bytes, sourceIP: "192.0.2.1", receivedAt: signedAt)
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(raw) }
    }

    @Test func bodyPartnerMismatch() throws {
        let bytes = Array(#"{"event_id":"E","partner_id":"site-002","out_trade_no":"P","status":"PAID","amount":"1"}"#.utf8)
        let raw = RawCallback(headers: side.signedHeaders(body: bytes, timestamp: signedAt), body: bytes, sourceIP: "192.0.2.1", receivedAt: signedAt)
        expectRejection(.merchantMismatch) { () throws(Rejection) in try adapter.verify(raw) }
    }

    @Test func roundTripThroughChannelSide() throws {
        for status in [PaymentStatus.paid, .closed, .pending, .other("REFUNDED")] {
            let order = ChannelOrder(outTradeNo: "P-\(status)", channelTradeNo: "PT-1", status: status, amountMinor: 12_345, points: 500)
            let message = side.notify(for: order, eventID: "E-1", timestamp: signedAt)
            let n = try adapter.verify(RawCallback(headers: message.headers, body: message.body, sourceIP: "192.0.2.1", receivedAt: signedAt))
            #expect(n.status == status && n.amountMinor == 12_345 && n.points == 500 && n.outTradeNo == "P-\(status)")
        }
    }

    @Test func queryRequestAndRoundTrip() async throws {
        let request = PointsQuery.makeRequest(configuration: config, outTradeNo: "ORDER 1", now: signedAt, nonce: "nonce-0001")
        #expect(request.url == "https://points.partner.example/api/v1/orders/ORDER%201?partner_id=site-001")
        let expected = "GET\n/api/v1/orders/ORDER%201?partner_id=site-001\n1795749606\nnonce-0001\n\n"
        _ = expected
        // python3: hmac.new(b"points-test-secret-3f9a1c7e5b2d4086", expected, hashlib.sha256).hexdigest()
        let mac = "73a0d916398bc5eaa04f07c30ff634e2f1202d2082e281799387925bd663a171"
        #expect(request.headers.first(named: "X-Points-Signature") == mac)

        let order = ChannelOrder(outTradeNo: "P-1", channelTradeNo: "PT-1", status: .paid, amountMinor: 99, paidAt: Date(timeIntervalSince1970: 1_800_000_000))
        let s = side
        let client = ChannelClient(.points(PointsAdapter(configuration: config)), transport: InProcessTransport { s.answerQuery($0, now: Date()) { $0 == "P-1" ? order : nil } })
        #expect(try await client.queryOrder(outTradeNo: "P-1") == .found(OrderEvidence(
            channel: "points", outTradeNo: "P-1", channelTradeNo: "PT-1", status: .paid, amountMinor: 99, currency: "CNY",
            merchant: MerchantIdentity(appID: nil, merchantID: "site-001"), paidAt: order.paidAt,
            payer: "sim-member-0001")), "the member whose points paid is the payer")
        #expect(try await client.queryOrder(outTradeNo: "P-2") == .notFound(outTradeNo: "P-2"))
        // The partner refuses requests signed with another secret.
        let wrong = PointsChannelSide(partnerID: "site-001", hmacSecret: SharedSecret(text: "x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x"))
        let refused = ChannelClient(.points(PointsAdapter(configuration: config)), transport: InProcessTransport { wrong.answerQuery($0, now: Date()) { _ in order } })
        await #expect(throws: QueryError.self) { try await refused.queryOrder(outTradeNo: "P-1") }
    }

    @Test func queryClassification() throws {
        func answer(_ status: Int, _ body: String, signed: Bool = true) throws(QueryError) -> OrderQueryResult {
            let bytes = Array(body.utf8)
            return try PointsQuery.interpret(ChannelResponse(status: status, headers: signed ? side.signedHeaders(body: bytes, timestamp: signedAt) : [], body: bytes),
                                             configuration: config, outTradeNo: "P-1", now: signedAt)
        }
        expectQueryError(.permanent, .badSignature) { () throws(QueryError) in try answer(404, #"{"code":"ORDER_NOT_FOUND"}"#, signed: false) }
        expectQueryError(.transient, .channelError) { () throws(QueryError) in try answer(503, #"{"code":"SYSTEM_ERROR"}"#) }
        expectQueryError(.permanent, .channelError) { () throws(QueryError) in try answer(401, #"{"code":"SIGN_ERROR"}"#) }
        expectQueryError(.permanent, .malformedResponse) { () throws(QueryError) in try answer(200, #"{"partner_id":"site-001","out_trade_no":"P-2","status":"PAID","amount":"1"}"#) }
        expectQueryError(.permanent, .badSignature) { () throws(QueryError) in try answer(200, #"{"partner_id":"site-001","out_trade_no":"P-1","status":"PAID","amount":"1"}"#, signed: false) }
    }

    @Test func acknowledgementIsExactlyAsTheReceiverExpects() {
        let ack = ChannelResponse.acknowledgement(for: adapter.channelType)
        #expect(ack.status == 200)
        #expect(ack.headers == [HeaderField(name: "Content-Type", value: "application/json")])
        #expect(String(decoding: ack.body, as: UTF8.self) == #"{"code":"SUCCESS"}"#)
        #expect(ChannelResponse.acknowledgement(for: .alipay).body == Array("success".utf8))
        #expect(ChannelResponse.acknowledgement(for: .wechatpayV3).status == 204)
        let fail = ChannelResponse.failure(for: .wechatpayV3, status: 500, message: "not stored \"yet\"")
        #expect(fail.status == 500 && String(decoding: fail.body, as: UTF8.self) == #"{"code":"FAIL","message":"not stored \"yet\""}"#)
    }

    @Test func anyChannelAdapterDispatches() throws {
        let any = ChannelConfiguration.points(config).makeAdapter()
        #expect(any.channelType == .points && any.channelID == "points")
        #expect(try any.verifyResult(try callback()).get().amountMinor == 8888)
        guard case .failure(let rejection) = any.verifyResult(try callback(ip: "10.0.0.1")) else { Issue.record("expected failure"); return }
        #expect(rejection.reason == .ipNotAllowed)
    }
}

