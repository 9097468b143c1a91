import ChannelClients
import Channels
import Foundation
import PayhookCore
import Simulator
import Testing

/// The simulator's refund calls and refund queries, read by our adapters, and the refund
/// notifies it sends, verified by them.
@Suite(.serialized) struct RefundAPITests {
    func refund(_ number: String, _ refundNo: String, _ amount: Int64, of total: Int64 = 8888) -> ChannelRefundRequest {
        ChannelRefundRequest(outTradeNo: number, refundNo: refundNo, amountMinor: amount, orderAmountMinor: total,
                             reason: "size")
    }

    @Test(arguments: SimulatedChannels.channelIDs)
    func partialThenFullRefundAtTheChannel(channel: String) async throws {
        let rig = try await TradeRig.start()
        defer { Task { await rig.stop(); } }
        var order = paidOrder("R-100")
        order.notifyURL = rig.notifyURL(channel)
        rig.live.simulator.setOrder(channel: channel, order)
        let client = rig.live.adapter(channel)

        let first = try await client.refund(refund("R-100", "RF-1", 1000))
        #expect(first.status == .succeeded)
        #expect(first.amountMinor == 1000)
        let again = try await client.refund(refund("R-100", "RF-1", 1000))
        #expect(again.amountMinor == 1000, "the same refund number is the same refund")
        // Alipay's repeat moves no money (fund_change N): the query says how it ended.
        #expect(again.status == (channel == "alipay" ? .processing : .succeeded))
        guard case .found(let asked) = try await client.queryRefund(refund("R-100", "RF-1", 1000)) else {
            Issue.record("the refund query finds the refund")
            return
        }
        #expect(asked.status == .succeeded && asked.amountMinor == 1000)

        let rest = try await client.refund(refund("R-100", "RF-2", 7888))
        #expect(rest.status == .succeeded)
        do {
            let more = try await client.refund(refund("R-100", "RF-3", 1))
            #expect(channel == "points" && more.status == .failed, "a refund past the paid amount is refused")
        } catch {
            #expect(!error.isTransient, "a refusal, not an unknown outcome: \(error)")
        }
        #expect(rig.live.simulator.order(channel: channel, outTradeNo: "R-100")?.refundedMinor == 8888)

        if channel != "points" {
            #expect(try await client.queryRefund(refund("R-100", "NO-SUCH", 1)) == .notFound)
            // One notify per refund that moved money, verified by our adapter.
            let deadline = ContinuousClock.now + .seconds(10)
            while rig.inbox.arrivals(channel).count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            let arrivals = rig.inbox.arrivals(channel)
            #expect(arrivals.count == 2)
            let notices = try arrivals.map { try rig.verify($0, channel: channel) }
            #expect(notices.map { $0.refund?.refundNo } == ["RF-1", "RF-2"])
            #expect(notices.allSatisfy { $0.evidence.status == .other("REFUND") })
            if channel == "alipay" {
                #expect(notices.map { $0.refund?.totalRefundedMinor } == [1000, 8888])
                #expect(arrivals.map { String(decoding: $0.body, as: UTF8.self).contains("trade_status=TRADE_CLOSED") } == [false, true])
            }
        }
    }

    @Test func aRefundOfAnUnpaidTradeIsRefused() async throws {
        let live = try await LiveSimulator.start()
        defer { Task { await live.server.stop() } }
        live.simulator.setOrder(channel: "wechatpay", ChannelOrder(outTradeNo: "R-200", channelTradeNo: "T200", status: .pending,
                                                                 amountMinor: 100))
        do {
            _ = try await live.adapter("wechatpay").refund(refund("R-200", "RF-1", 100, of: 100))
            Issue.record("an unpaid trade cannot be refunded")
        } catch {
            #expect(!error.isTransient)
        }
    }
}
