import ChannelClients
import Foundation
import PayhookCore
import Simulator
import Testing
@testable import Channels

@Suite struct WeChatPayTests {
    let config: WeChatPayConfiguration
    let adapter: WeChatPayAdapter
    let certSerial: String
    let pubKeyID: String
    /// The fixtures' signing time (Wechatpay-Timestamp 1795749606).
    let signedAt = Date(timeIntervalSince1970: 1_795_749_606)

    init() throws {
        let serials = try Fixture.json("wechat_serials.json")
        certSerial = serials["certificate_serial"] as! String
        pubKeyID = serials["public_key_id"] as! String
        config = WeChatPayConfiguration(
            channelID: "wechatpay", mchID: "1900000001", appID: "wx0000000000000001",
            apiV3Key: SharedSecret(text: try Fixture.text("wechat_apiv3.key").trimmingCharacters(in: .whitespacesAndNewlines)),
            platformKeys: [
                // Certificate serials compare case-insensitively.
                certSerial.lowercased(): try CertificateKey(pemRepresentation: Fixture.text("wechat_platform_cert.pem")).publicKey,
                pubKeyID: try RSAPublicKey(pemRepresentation: Fixture.text("wechat_pubkey_id_public.pem")),
            ],
            merchantPrivateKey: try RSAPrivateKey(pemRepresentation: Fixture.text("wechat_merchant_private.pem")),
            merchantSerialNo: "0000000000000000000000000000000000000001",
            apiBaseURL: "http://127.0.0.1:1/", allowedIPs: [], maxClockSkewSeconds: 300)
        adapter = WeChatPayAdapter(configuration: config)
    }

    func callback(_ name: String, at receivedAt: Date? = nil, headers edit: ([HeaderField]) -> [HeaderField] = { $0 }, body bodyEdit: ([UInt8]) -> [UInt8] = { $0 }) throws -> RawCallback {
        let message = try Fixture.signedMessage(name)
        return RawCallback(kind: .notify, method: "POST", path: "/notify/wechatpay", headers: edit(message.headers),
                           body: bodyEdit(message.body), sourceIP: "203.0.113.9", receivedAt: receivedAt ?? signedAt)
    }

    func replacing(_ name: String, with value: String) -> ([HeaderField]) -> [HeaderField] {
        { $0.map { $0.name.lowercased() == name.lowercased() ? HeaderField(name: $0.name, value: value) : $0 } }
    }

    func removing(_ name: String) -> ([HeaderField]) -> [HeaderField] {
        { $0.filter { $0.name.lowercased() != name.lowercased() } }
    }

    @Test func certificateSerialIsReadFromTheCertificate() throws {
        let cert = try CertificateKey(pemRepresentation: Fixture.text("wechat_platform_cert.pem"))
        #expect(cert.serial == "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
        #expect(config.platformKeys.keys.sorted() == [certSerial, pubKeyID].sorted())
    }

    @Test func validNotifyFromPlatformCertificate() throws {
        let n = try adapter.verify(try callback("wechat_notify_cert.json"))
        #expect(n.channelType == .wechatpayV3)
        #expect(n.outTradeNo == "ORDER-20261127-0002")
        #expect(n.channelTradeNo == "4200001234202611270000000001")
        #expect(n.status == .paid)
        #expect(n.amountMinor == 8888)
        #expect(n.currency == "CNY")
        #expect(n.merchant == MerchantIdentity(appID: "wx0000000000000001", merchantID: "1900000001"))
        #expect(n.eventID == "EV-2026112710000500001")
        #expect(n.paidAt == Date(timeIntervalSince1970: 1_795_744_805))
    }

    @Test func rotatedKeysBothVerify() throws {
        // One notify signed by the certificate's key, one by the PUB_KEY_ID key: both configured at once.
        #expect(try adapter.verify(try callback("wechat_notify_cert.json")).status == .paid)
        #expect(try adapter.verify(try callback("wechat_notify_pubkey_id.json")).status == .paid)
        #expect(try adapter.verify(try callback("wechat_notify_closed.json")).status == .closed)
        // Header names are case-insensitive.
        let lower = try callback("wechat_notify_pubkey_id.json", headers: { $0.map { HeaderField(name: $0.name.lowercased(), value: $0.value) } })
        #expect(throws: Never.self) { try adapter.verify(lower) }
    }

    @Test func serialNamingTheOtherKeyIsBadSignature() throws {
        expectRejection(.badSignature) { () throws(Rejection) in
            try adapter.verify(try! callback("wechat_notify_cert.json", headers: replacing("Wechatpay-Serial", with: pubKeyID)))
        }
    }

    @Test func tamperedBodyAndAmount() throws {
        expectRejection(.badSignature) { () throws(Rejection) in
            try adapter.verify(try! callback("wechat_notify_cert.json", body: { Array(String(decoding: $0, as: UTF8.self).replacingOccurrences(of: "EV-2026", with: "EV-2027").utf8) }))
        }
        // Amount lives in the ciphertext; flipping a ciphertext byte breaks the signature first,
        // and (with the signature recomputed by a key we hold) the AEAD tag.
        expectRejection(.badSignature) { () throws(Rejection) in
            try adapter.verify(try! callback("wechat_notify_cert.json", body: { Array(String(decoding: $0, as: UTF8.self).replacingOccurrences(of: "\"ciphertext\":\"", with: "\"ciphertext\":\"A").utf8) }))
        }
    }

    @Test func wrongKeyIsBadSignature() throws {
        // Re-sign the fixture body with a key that is not the one its serial names.
        let message = try Fixture.signedMessage("wechat_notify_cert.json")
        let side = WeChatPayChannelSide(signingKey: .generate(), signingSerial: certSerial, apiV3Key: config.apiV3Key,
                                        merchantPublicKey: nil, mchID: config.mchID, appID: config.appID)
        let raw = RawCallback(headers: side.signedHeaders(body: message.body, timestamp: signedAt), body: message.body, receivedAt: signedAt)
        expectRejection(.badSignature) { () throws(Rejection) in try adapter.verify(raw) }
    }

    @Test func unknownKey() throws {
        expectRejection(.unknownKey) { () throws(Rejection) in
            try adapter.verify(try! callback("wechat_notify_cert.json", headers: replacing("Wechatpay-Serial", with: "7132D72A03E93CDDF8C03BBD1F37EEDF204E2BA3")))
        }
    }

    @Test(arguments: ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"])
    func missingHeaderIsMalformed(_ header: String) throws {
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(try! callback("wechat_notify_cert.json", headers: removing(header))) }
    }

    @Test func staleTimestamp() throws {
        expectRejection(.staleTimestamp) { () throws(Rejection) in
            try adapter.verify(try! callback("wechat_notify_cert.json", at: signedAt.addingTimeInterval(301)))
        }
        expectRejection(.staleTimestamp) { () throws(Rejection) in
            try adapter.verify(try! callback("wechat_notify_cert.json", at: signedAt.addingTimeInterval(-301)))
        }
        #expect(throws: Never.self) { try adapter.verify(try callback("wechat_notify_cert.json", at: signedAt.addingTimeInterval(300))) }
        expectRejection(.malformed) { () throws(Rejection) in
            try adapter.verify(try! callback("wechat_notify_cert.json", headers: replacing("Wechatpay-Timestamp", with: "17957x9606")))
        }
    }

    @Test func probeSignature() throws {
        expectRejection(.probeSignature) { () throws(Rejection) in
            try adapter.verify(try! callback("wechat_notify_cert.json", headers: replacing("Wechatpay-Signature", with: "WECHATPAY/SIGNTEST/Zm9vYmFy")))
        }
    }

    @Test func unsupportedSignatureType() throws {
        expectRejection(.unsupportedSignType) { () throws(Rejection) in
            try adapter.verify(try! callback("wechat_notify_cert.json", headers: replacing("Wechatpay-Signature-Type", with: "WECHATPAY2-SM2-WITH-SM3")))
        }
    }

    func side(serial: String? = nil, apiV3Key: SharedSecret? = nil, mchID: String? = nil, appID: String? = nil) throws -> WeChatPayChannelSide {
        WeChatPayChannelSide(
            signingKey: try RSAPrivateKey(pemRepresentation: Fixture.text("wechat_pubkey_id_private.pem")), signingSerial: serial ?? pubKeyID,
            apiV3Key: apiV3Key ?? config.apiV3Key,
            merchantPublicKey: try RSAPublicKey(pemRepresentation: Fixture.text("wechat_merchant_public.pem")),
            mchID: mchID ?? config.mchID, appID: appID ?? config.appID)
    }

    let order = ChannelOrder(outTradeNo: "W-1", channelTradeNo: "4200000000000000000000000001", status: .paid,
                             amountMinor: 1, paidAt: Date(timeIntervalSince1970: 1_800_000_000))

    @Test func decryptFailed() throws {
        // Correctly signed, but encrypted with another APIv3 key: the tag fails.
        let wrong = try side(apiV3Key: SharedSecret(text: "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"))
        let message = wrong.notify(for: order, eventID: "E1", timestamp: signedAt)
        expectRejection(.decryptFailed) { () throws(Rejection) in
            try adapter.verify(RawCallback(headers: message.headers, body: message.body, receivedAt: signedAt))
        }
    }

    @Test func tamperedCiphertextUnderAValidSignatureIsDecryptFailed() throws {
        // Someone holding a trusted platform key (here: the test's) re-signs a body whose
        // encrypted amount was altered: the AEAD tag still catches it.
        let s = try side()
        let message = s.notify(for: order, eventID: "E1", timestamp: signedAt, resourceNonce: "0123456789ab")
        var text = String(decoding: message.body, as: UTF8.self)
        let start = try #require(text.range(of: "\"ciphertext\":\"")).upperBound
        let original = text[start]
        text.replaceSubrange(start...start, with: original == "A" ? "B" : "A")
        let body = Array(text.utf8)
        expectRejection(.decryptFailed) { () throws(Rejection) in
            try adapter.verify(RawCallback(headers: s.signedHeaders(body: body, timestamp: signedAt), body: body, receivedAt: signedAt))
        }
    }

    @Test func merchantMismatch() throws {
        for s in [try side(mchID: "1900000999"), try side(appID: "wx0000000000000999")] {
            let message = s.notify(for: order, eventID: "E1", timestamp: signedAt)
            expectRejection(.merchantMismatch) { () throws(Rejection) in
                try adapter.verify(RawCallback(headers: message.headers, body: message.body, receivedAt: signedAt))
            }
        }
    }

    @Test func malformedBodies() throws {
        let s = try side()
        for body in ["", "{}", "[1]", #"{"resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"AAAA","nonce":"x"}}"#] {
            let raw = RawCallback(headers: s.signedHeaders(body: Array(body.utf8), timestamp: signedAt), body: Array(body.utf8), receivedAt: signedAt)
            expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(raw) }
        }
        expectRejection(.unsupportedKind) { () throws(Rejection) in
            try adapter.verify(RawCallback(kind: .return, method: "GET", receivedAt: signedAt))
        }
    }

    @Test func roundTripThroughChannelSide() throws {
        for status in [PaymentStatus.paid, .closed, .pending, .other("REFUND")] {
            var o = order
            o.status = status
            o.amountMinor = 9_007_199_254_740_993  // above 2^53: exact only without Double
            let message = try side(serial: certSerial).notify(for: o, eventID: "E-\(status)", timestamp: signedAt)
            // Signed with the PUB_KEY_ID key but naming the certificate serial → bad signature.
            expectRejection(.badSignature) { () throws(Rejection) in
                try adapter.verify(RawCallback(headers: message.headers, body: message.body, receivedAt: signedAt))
            }
            let good = try side().notify(for: o, eventID: "E-\(status)", timestamp: signedAt)
            let n = try adapter.verify(RawCallback(headers: good.headers, body: good.body, receivedAt: signedAt))
            #expect(n.status == status && n.amountMinor == 9_007_199_254_740_993 && n.eventID == "E-\(status)")
            #expect(n.paidAt == Date(timeIntervalSince1970: 1_800_000_000))
        }
    }

    /// JSON escapes are legal anywhere in the envelope: a sender that writes `\/` for `/` or
    /// `\u0041` for `A` (in values and keys) must verify exactly like one that does not.
    @Test func escapedEnvelopeVerifiesTheSame() throws {
        let s = try side()
        let message = s.notify(for: order, eventID: "E-ESC", timestamp: signedAt)
        let text = String(decoding: message.body, as: UTF8.self)
        let start = try #require(text.range(of: "\"ciphertext\":\"")).upperBound
        let end = try #require(text[start...].firstIndex(of: "\""))
        let escapedCiphertext = text[start..<end].replacingOccurrences(of: "/", with: "\\/").replacingOccurrences(of: "A", with: "\\u0041")
        let escaped = (text[..<start] + escapedCiphertext + text[end...])
            .replacingOccurrences(of: "\"ciphertext\"", with: "\"cipher\\u0074ext\"")
            .replacingOccurrences(of: "\"id\":\"E-ESC\"", with: "\"\\u0069d\":\"E-\\u0045SC\"")
        #expect(escaped.contains("\\u0041") && escaped.contains("\\u0074") && escaped != text)
        let body = Array(escaped.utf8)
        let n = try adapter.verify(RawCallback(headers: s.signedHeaders(body: body, timestamp: signedAt), body: body, receivedAt: signedAt))
        let plain = try adapter.verify(RawCallback(headers: message.headers, body: message.body, receivedAt: signedAt))
        #expect(n.eventID == "E-ESC" && n.outTradeNo == plain.outTradeNo && n.amountMinor == plain.amountMinor && n.status == plain.status)
    }

    @Test func queryResponseFixture() throws {
        let fixture = try Fixture.json("wechat_query_response.json")
        let headers = (fixture["headers"] as! [String: String]).map { HeaderField(name: $0.key, value: $0.value) }
        let response = ChannelResponse(status: 200, headers: headers, body: Array((fixture["body"] as! String).utf8))
        let result = try WeChatPayQuery.interpret(response, configuration: config, outTradeNo: "ORDER-20261127-0002", now: signedAt)
        guard case .found(let o) = result else { Issue.record("\(result)"); return }
        #expect(o.amountMinor == 8888 && o.status == .paid && o.channelTradeNo == "4200001234202611270000000001")
        expectQueryError(.transient, .badSignature) { () throws(QueryError) in
            try WeChatPayQuery.interpret(response, configuration: config, outTradeNo: "ORDER-20261127-0002", now: signedAt.addingTimeInterval(3600))
        }
        var tampered = response
        tampered.body = Array(String(decoding: response.body, as: UTF8.self).replacingOccurrences(of: "8888", with: "1").utf8)
        expectQueryError(.permanent, .badSignature) { () throws(QueryError) in
            try WeChatPayQuery.interpret(tampered, configuration: config, outTradeNo: "ORDER-20261127-0002", now: signedAt)
        }
    }

    @Test func queryClassification() throws {
        let s = try side()
        func answer(_ status: Int, _ body: String, signed: Bool = true) throws(QueryError) -> OrderQueryResult {
            let bytes = Array(body.utf8)
            return try WeChatPayQuery.interpret(
                ChannelResponse(status: status, headers: signed ? s.signedHeaders(body: bytes, timestamp: signedAt) : [], body: bytes),
                configuration: config, outTradeNo: "W-1", now: signedAt)
        }
        #expect(try answer(404, #"{"code":"ORDER_NOT_EXIST","message":"订单不存在"}"#) == .notFound(outTradeNo: "W-1"))
        expectQueryError(.transient, .badSignature) { () throws(QueryError) in try answer(404, #"{"code":"ORDER_NOT_EXIST","message":"x"}"#, signed: false) }
        expectQueryError(.transient, .channelError) { () throws(QueryError) in try answer(500, #"{"code":"SYSTEM_ERROR","message":"x"}"#) }
        expectQueryError(.transient, .httpStatus) { () throws(QueryError) in try answer(502, "<html>bad gateway</html>", signed: false) }
        expectQueryError(.transient, .channelError) { () throws(QueryError) in try answer(429, #"{"code":"FREQUENCY_LIMITED","message":"x"}"#) }
        expectQueryError(.permanent, .channelError) { () throws(QueryError) in try answer(401, #"{"code":"SIGN_ERROR","message":"x"}"#) }
        expectQueryError(.permanent, .channelError) { () throws(QueryError) in try answer(400, #"{"code":"PARAM_ERROR","message":"x"}"#) }
    }

    @Test func queryRequestIsSignedAsSpecified() throws {
        let request = try WeChatPayQuery.makeRequest(configuration: config, outTradeNo: "W 1/x", now: signedAt, nonce: "NONCE123")
        #expect(request.method == "GET")
        #expect(request.url == "http://127.0.0.1:1/v3/pay/transactions/out-trade-no/W%201%2Fx?mchid=1900000001")
        let authorization = try #require(request.headers.first(named: "authorization"))
        let fields = try #require(WeChatPaySignature.parseAuthorization(authorization))
        #expect(fields["mchid"] == "1900000001" && fields["nonce_str"] == "NONCE123" && fields["timestamp"] == "1795749606")
        #expect(fields["serial_no"] == "0000000000000000000000000000000000000001")
        let expected = "GET\n/v3/pay/transactions/out-trade-no/W%201%2Fx?mchid=1900000001\n1795749606\nNONCE123\n\n"
        let merchantPublic = try RSAPublicKey(pemRepresentation: Fixture.text("wechat_merchant_public.pem"))
        #expect(merchantPublic.isValidSHA256Signature(Array(Data(base64Encoded: fields["signature"]!)!), for: Array(expected.utf8)))
    }

    @Test func queryRoundTripThroughChannelSide() async throws {
        let s = try side()
        let o = order
        let client = ChannelClient(.wechatPay(WeChatPayAdapter(configuration: config)), transport: InProcessTransport { request in
            s.answerQuery(request, now: Date()) { $0 == "W-1" ? o : nil }
        })
        let found = try await client.queryOrder(outTradeNo: "W-1")
        #expect(found == .found(OrderEvidence(channel: "wechatpay", outTradeNo: "W-1", channelTradeNo: o.channelTradeNo, status: .paid, amountMinor: 1, currency: "CNY",
                                             merchant: MerchantIdentity(appID: config.appID, merchantID: config.mchID), paidAt: o.paidAt,
                                             payer: "oSimulatedOpenID000000000000")), "payer.openid is the payer")
        #expect(try await client.queryOrder(outTradeNo: "W-2") == .notFound(outTradeNo: "W-2"))
        // A request signed by a key the channel does not know is refused (401, permanent).
        var otherSide = s
        otherSide.merchantPublicKey = RSAPrivateKey.generate().publicKey
        let other = otherSide
        let refused = ChannelClient(.wechatPay(WeChatPayAdapter(configuration: config)), transport: InProcessTransport { other.answerQuery($0, now: Date()) { _ in o } })
        do {
            _ = try await refused.queryOrder(outTradeNo: "W-1")
            Issue.record("expected SIGN_ERROR")
        } catch {
            #expect(error.kind == .permanent && error.detail.contains("SIGN_ERROR"))
        }
    }
}
