import CallbackQueue
import Channels
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Postgres
import PostgresTestSupport
import Prometheus
import Receiver
import Testing

/// Every route and refusal through the router (no socket), against a real database.
@Suite struct RouteTests {
    @Test func notifyIsStoredThenAcknowledgedInEachChannelsFormat() async throws {
        let harness = try ReceiverHarness()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/notify/alipay", method: .post,
                                     body: ByteBuffer(string: "trade_status=TRADE_SUCCESS&total_amount=88.88")) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "success")
            }
            try await client.execute(uri: "/notify/wechatpay", method: .post, body: ByteBuffer(string: "{}")) {
                #expect($0.status == .noContent)
            }
            try await client.execute(uri: "/notify/points", method: .post, body: ByteBuffer(string: "{}")) {
                #expect($0.status == .ok)
                #expect(String(buffer: $0.body) == #"{"code":"SUCCESS"}"#)
            }
        }
        let rows = try harness.storedRows()
        #expect(rows.map(\.path) == ["/notify/alipay", "/notify/wechatpay", "/notify/points"])
        #expect(rows[0].body == Array("trade_status=TRADE_SUCCESS&total_amount=88.88".utf8))
        #expect(rows.allSatisfy { $0.kind == "notify" })
    }

    @Test func refusalsStoreNothing() async throws {
        let harness = try ReceiverHarness(maxBodyBytes: 100)
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/notify/paypal", method: .post, body: ByteBuffer(string: "x")) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/notify/alipay", method: .post,
                                     headers: [.contentLength: "101"], body: ByteBuffer(repeating: 0x41, count: 101)) {
                #expect($0.status == .contentTooLarge)
            }
            // No Content-Length: the limit is enforced while reading.
            try await client.execute(uri: "/notify/alipay", method: .post, body: ByteBuffer(repeating: 0x41, count: 101)) {
                #expect($0.status == .contentTooLarge)
            }
            try await client.execute(uri: "/notify/alipay", method: .get) { #expect($0.status == .methodNotAllowed) }
            try await client.execute(uri: "/notify/alipay", method: .put) { #expect($0.status == .methodNotAllowed) }
            try await client.execute(uri: "/return/alipay", method: .post) { #expect($0.status == .methodNotAllowed) }
            // Exactly at the limit is accepted.
            try await client.execute(uri: "/notify/alipay", method: .post, body: ByteBuffer(repeating: 0x41, count: 100)) {
                #expect($0.status == .ok)
            }
        }
        #expect(try harness.storedRows().count == 1)
        let metrics = harness.registry.emitToString()
        #expect(metrics.contains(#"payhook_receiver_body_too_large_total{channel="alipay"} 2"#))
        #expect(metrics.contains(#"payhook_receiver_requests_total{channel="unknown",status="404"} 1"#))
    }

    @Test func returnIsStoredAndAnsweredWithAnEscapedPage() async throws {
        let harness = try ReceiverHarness()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/return/alipay?out_trade_no=%3Cb%3E%26x&total_amount=1.00", method: .get) {
                #expect($0.status == .ok)
                let page = String(buffer: $0.body)
                #expect(page.contains("&lt;b&gt;&amp;x"))
                #expect(!page.contains("<b>&x"))
            }
        }
        let rows = try harness.storedRows()
        #expect(rows.count == 1)
        #expect(rows[0].kind == "return")
        #expect(rows[0].query == "out_trade_no=%3Cb%3E%26x&total_amount=1.00")
    }

    @Test func databaseDownMeans503InTheChannelsFormatNever200() async throws {
        let harness = try ReceiverHarness(databaseURL: "postgres://postgres@127.0.0.1:1/none")
        try await harness.application().test(.router) { client in
            let start = ContinuousClock.now
            try await client.execute(uri: "/notify/wechatpay", method: .post, body: ByteBuffer(string: "{}")) {
                #expect($0.status == .serviceUnavailable)
                #expect(String(buffer: $0.body).contains(#""code":"FAIL""#))
            }
            try await client.execute(uri: "/notify/alipay", method: .post, body: ByteBuffer(string: "a=1")) {
                #expect($0.status == .serviceUnavailable)
                #expect(String(buffer: $0.body) != "success")
            }
            #expect(ContinuousClock.now - start < .seconds(10), "bounded by the commit timeout, not hanging")
        }
        #expect(harness.registry.emitToString().contains(#"payhook_receiver_unavailable_total{channel="alipay"} 1"#))
    }

    @Test func healthAndReadiness() async throws {
        let harness = try ReceiverHarness()
        let check = Task { await harness.readiness.run() }
        defer { check.cancel() }
        for _ in 0..<50 where !harness.readiness.isReady { try await Task.sleep(for: .milliseconds(50)) }
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
        }
        let down = try ReceiverHarness(database: harness.database, databaseURL: "postgres://postgres@127.0.0.1:1/none")
        let downCheck = Task { await down.readiness.run() }
        defer { downCheck.cancel() }
        try await Task.sleep(for: .milliseconds(300))
        try await down.application().test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test func metricsAreExposedInPrometheusText() async throws {
        let harness = try ReceiverHarness()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: "/notify/alipay", method: .post, body: ByteBuffer(string: "a=1"))
            try await client.execute(uri: "/metrics", method: .get) {
                #expect($0.status == .ok)
                #expect(String(buffer: $0.body).contains(#"payhook_receiver_requests_total{channel="alipay",status="200"} 1"#))
            }
        }
    }
}

@Suite struct ClientAddressTests {
    let trusted = [CIDR.parse("10.0.0.0/8")!, CIDR.parse("127.0.0.1/32")!]

    @Test func untrustedPeersCannotSpoofForwardedFor() {
        #expect(ClientAddress.resolve(peer: "203.0.113.5", forwardedFor: ["1.2.3.4"], trustedProxies: trusted)
                == "203.0.113.5")
        #expect(ClientAddress.resolve(peer: "203.0.113.5", forwardedFor: ["1.2.3.4"], trustedProxies: []) == "203.0.113.5")
    }

    @Test func trustedProxiesAreSkippedFromTheRight() {
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["198.51.100.7"], trustedProxies: trusted)
                == "198.51.100.7")
        // A client-supplied spoof stands left of the real client: the right-most untrusted hop wins.
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["6.6.6.6, 198.51.100.7, 10.0.0.9"],
                                      trustedProxies: trusted) == "198.51.100.7")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["6.6.6.6", "198.51.100.7"],
                                      trustedProxies: trusted) == "198.51.100.7")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["2001:db8::1"], trustedProxies: trusted)
                == "2001:db8::1")
    }

    @Test func malformedOrAllTrustedChainsStopSafely() {
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["not-an-ip"], trustedProxies: trusted) == "10.0.0.2")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["garbage, 198.51.100.7"], trustedProxies: trusted)
                == "198.51.100.7")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["10.0.0.3"], trustedProxies: trusted) == "10.0.0.3")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: [], trustedProxies: trusted) == "10.0.0.2")
    }
}
