import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Orders
import PayhookCore
import Postgres
import PostgresTestSupport
import Simulator
import SiteOrders
import Testing

/// `POST /v1/orders/{id}/refunds` over a real PostgreSQL, the simulated channels over loopback.
@Suite(.serialized) struct SiteRefundTests {
    /// A paid order on both sides: the site's table and the channel's books.
    func paid(_ harness: APIHarness, _ number: String, channel: String, amount: Int64 = 1000) throws {
        try harness.database.connect().query("""
            INSERT INTO orders (out_trade_no, channel, amount_minor, currency, status, paid_at, channel_trade_no)
            VALUES ($1, $2, $3, 'CNY', 'paid', now(), $4)
            """, [.text(number), .text(channel), .int64(amount), .text("CT-\(number)")])
        harness.simulator.setOrder(channel: channel, ChannelOrder(
            outTradeNo: number, channelTradeNo: "CT-\(number)", status: .paid, amountMinor: amount, paidAt: Date()))
    }

    func post(_ client: any TestClientProtocol, _ number: String, _ body: String,
              headers: HTTPFields = APIHarness.auth) async throws -> (HTTPResponse.Status, [String: Any]) {
        try await client.execute(uri: "/v1/orders/\(number)/refunds", method: .post, headers: headers,
                                 body: ByteBuffer(string: body)) { response in (response.status, try json(response)) }
    }

    func refund(_ answer: [String: Any]) -> [String: Any] { answer["refund"] as? [String: Any] ?? [:] }

    @Test(arguments: ["alipay", "wechatpay", "points"])
    func partialThenFullRefundAndTheIdempotentRepeat(channel: String) async throws {
        try await APIHarness.with { harness in
            let number = "SR_\(channel)_1"
            try paid(harness, number, channel: channel)
            try await harness.test { client in
                let partial = #"{"out_refund_no":"RF-1","amount":"2.50","reason":"one item back"}"#
                let (created, first) = try await post(client, number, partial)
                #expect(created == .created)
                #expect(refund(first)["status"] as? String == "succeeded")
                #expect(refund(first)["amount"] as? String == "2.50")
                #expect(order(first)["status"] as? String == "paid")
                #expect(order(first)["refunded_minor"] as? Int == 250)

                let (repeated, again) = try await post(client, number, partial)
                #expect(repeated == .ok, "the same body is the same refund")
                #expect(refund(again)["out_refund_no"] as? String == "RF-1")
                #expect(order(again)["refunded_minor"] as? Int == 250, "refunded once")

                let (conflict, refused) = try await post(client, number, #"{"out_refund_no":"RF-1","amount":"2.51"}"#)
                #expect(conflict == .conflict)
                #expect(refused["code"] as? String == "refund_conflict")

                let (exceeds, tooMuch) = try await post(client, number, #"{"out_refund_no":"RF-2","amount":"7.51"}"#)
                #expect(exceeds == .conflict)
                #expect(tooMuch["code"] as? String == "refund_exceeds_paid")

                let (full, rest) = try await post(client, number, #"{"out_refund_no":"RF-2","amount":"7.50"}"#)
                #expect(full == .created)
                #expect(order(rest)["status"] as? String == "refunded")
                #expect(order(rest)["refunded_amount"] as? String == "10.00")

                let (done, nothingLeft) = try await post(client, number, #"{"out_refund_no":"RF-3","amount":"0.01"}"#)
                #expect(done == .conflict)
                #expect(nothingLeft["code"] as? String == "order_not_refundable")

                try await client.execute(uri: "/v1/orders/\(number)", method: .get, headers: APIHarness.auth) { response in
                    let found = try json(response)
                    let refunds = found["refunds"] as? [[String: Any]] ?? []
                    #expect(refunds.map { $0["out_refund_no"] as? String } == ["RF-1", "RF-2"])
                    #expect(refunds.allSatisfy { $0["status"] as? String == "succeeded" })
                }
            }
            #expect(harness.simulator.order(channel: channel, outTradeNo: number)?.refundedMinor == 1000, "the channel refunded each once")
            #expect(try harness.count("SELECT count(*) FROM order_outbox WHERE kind = 'order.refunded'") == 2)
        }
    }

    @Test func badRequestsAreRefusedWithTheirCodeAndWriteNothing() async throws {
        try await APIHarness.with { harness in
            try paid(harness, "SR_BAD", channel: "wechatpay")
            try harness.database.connect().query(
                "INSERT INTO orders (out_trade_no, channel, amount_minor, currency) VALUES ('SR_UNPAID', 'wechatpay', 100, 'CNY')")
            let cases: [(String, String, HTTPFields, HTTPResponse.Status, String)] = [
                ("SR_BAD", #"{"amount":"1.00"}"#, APIHarness.auth, .badRequest, "missing_field"),
                ("SR_BAD", #"{"out_refund_no":"RF-1"}"#, APIHarness.auth, .badRequest, "missing_field"),
                ("SR_BAD", #"{"out_refund_no":"RF-1","amount":"1e3"}"#, APIHarness.auth, .badRequest, "invalid_amount"),
                ("SR_BAD", #"{"out_refund_no":"RF-1","amount":1.5}"#, APIHarness.auth, .badRequest, "invalid_amount"),
                ("SR_BAD", #"{"out_refund_no":"RF-1","amount":"0.00"}"#, APIHarness.auth, .badRequest, "amount_out_of_range"),
                ("SR_BAD", #"{"out_refund_no":"a b","amount":"1.00"}"#, APIHarness.auth, .badRequest, "invalid_out_refund_no"),
                ("SR_BAD", #"{"out_refund_no":"RF-1","amount":"1.00","tip":"x"}"#, APIHarness.auth, .badRequest, "unknown_field"),
                ("SR_BAD", "{not json", APIHarness.auth, .badRequest, "invalid_json"),
                ("SR_BAD", #"{"out_refund_no":"RF-1","amount":"1.00"}"#,
                 [.authorization: "Bearer \(APIHarness.token)", .contentType: "text/plain"], .unsupportedMediaType, "unsupported_media_type"),
                ("SR_NONE", #"{"out_refund_no":"RF-1","amount":"1.00"}"#, APIHarness.auth, .notFound, "order_not_found"),
                ("SR_UNPAID", #"{"out_refund_no":"RF-1","amount":"1.00"}"#, APIHarness.auth, .conflict, "order_not_refundable"),
                ("SR_BAD", #"{"out_refund_no":"RF-1","amount":"10.01"}"#, APIHarness.auth, .conflict, "refund_exceeds_paid"),
            ]
            try await harness.test { client in
                for (number, body, headers, status, code) in cases {
                    let (answered, answer) = try await post(client, number, body, headers: headers)
                    #expect(answered == status, "\(code)")
                    #expect(answer["code"] as? String == code)
                    #expect((answer["message"] as? String)?.isEmpty == false)
                }
                try await client.execute(uri: "/v1/orders/SR_BAD/refunds", method: .get, headers: APIHarness.auth) { response in
                    #expect(response.status == .methodNotAllowed)
                    #expect(response.headers[.allow] == "POST")
                }
            }
            #expect(try harness.count("SELECT count(*) FROM order_refunds") == 0)
            #expect(try harness.count("SELECT count(*) FROM order_events WHERE kind = 'refund'") == 0)
            #expect(harness.simulator.callCount(channel: "wechatpay") == 0, "no channel was called")
        }
    }

    @Test(arguments: [CallBehaviour.httpError(503), .lostAnswer])
    func aLostAnswerOrA5xxIsUnknownNeverFailedAndTheRepeatSettlesIt(_ fault: CallBehaviour) async throws {
        try await APIHarness.with { harness in
            let number = "SR_LOST"
            try paid(harness, number, channel: "wechatpay")
            harness.simulator.scriptCalls(channel: "wechatpay", outTradeNo: number, [fault])
            let body = Array(#"{"out_refund_no":"RF-L","amount":"4.00"}"#.utf8)
            let first = try await harness.desk.refund(number, body: body)
            #expect(first.confirming)
            #expect(first.refund.status == .processing)
            #expect(first.order.refundedMinor == 0)
            let again = try await harness.desk.refund(number, body: body)
            #expect(again.kind == .repeated)
            #expect(again.refund.status == .succeeded)
            #expect(again.order.refundedMinor == 400)
            #expect(harness.simulator.order(channel: "wechatpay", outTradeNo: number)?.refundedMinor == 400, "refunded once at the channel")
        }
    }

    @Test(arguments: ["alipay", "wechatpay"])
    func theSweeperSettlesARefundLeftProcessing(channel: String) async throws {
        try await APIHarness.with { harness in
            let number = "SR_SWEEP_\(channel)"
            try paid(harness, number, channel: channel)
            harness.simulator.scriptCalls(channel: channel, outTradeNo: number, [.httpError(502)])
            let first = try await harness.desk.refund(number, body: Array(#"{"out_refund_no":"RF-S","amount":"10.00"}"#.utf8))
            #expect(first.refund.status == .processing)
            // Asked about only once it is older than the interval.
            #expect(try await harness.desk.settleProcessingRefunds(limit: 10, everySeconds: 600) == 0)
            try harness.database.connect().query("UPDATE order_refunds SET updated_at = now() - interval '1 hour'")
            #expect(try await harness.desk.settleProcessingRefunds(limit: 10, everySeconds: 600) == 1)
            let connection = try harness.database.connect()
            #expect(try RefundStore.record(outTradeNo: number, refundNo: "RF-S", on: connection)?.status == .succeeded)
            #expect(try SiteOrderStore.find(number, on: connection)?.status == .refunded)
            #expect(harness.simulator.order(channel: channel, outTradeNo: number)?.refundedMinor == 1000)
        }
    }
}
