import Foundation
import PayhookCore
import Simulator
import Testing
@testable import Channels

/// Refund notifies as the channels send them (signed by the simulator's channel sides):
/// recognised, verified, never read as a payment or a close; forged ones refused.
@Suite struct RefundNotifyTests {
    static let channels = SimulatedChannels.generate()
    let factory = NotifyFactory(channels: RefundNotifyTests.channels)

    func adapter(_ id: String) -> AnyChannelAdapter {
        Self.channels.configuration(id, baseURL: "http://127.0.0.1:1")!.makeAdapter()
    }

    func paid(_ number: String, amount: Int64 = 8888) -> ChannelOrder {
        ChannelOrder(outTradeNo: number, channelTradeNo: "CT-\(number)", status: .paid, amountMinor: amount,
                     paidAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    func refunded(_ order: ChannelOrder, _ refunds: [(String, Int64)], status: RefundStatus = .succeeded) -> (ChannelOrder, SimulatedRefund) {
        var order = order
        order.refunds = refunds.map { SimulatedRefund(refundNo: $0.0, refundID: "50-\($0.0)", amountMinor: $0.1, status: status,
                                                      refundedAt: Date(timeIntervalSince1970: 1_800_000_100)) }
        return (order, order.refunds.last!)
    }

    @Test func alipayPartialRefundOnTradeSuccessIsARefundNotAPayment() throws {
        let (order, refund) = refunded(paid("A-1"), [("RF-1", 1000)])
        let notify = factory.refundNotify(channel: "alipay", order: order, refund: refund, eventID: "N-1")
        #expect(String(decoding: notify.body, as: UTF8.self).contains("trade_status=TRADE_SUCCESS"))
        let verified = try adapter("alipay").verify(notify.rawCallback())
        #expect(verified.evidence.status == .other("REFUND"), "never evidence of payment")
        let notice = try #require(verified.refund)
        #expect(notice.refundNo == "RF-1")
        #expect(notice.totalRefundedMinor == 1000)
        #expect(notice.amountMinor == nil, "Alipay's notify names the total only; the query names this refund's amount")
        #expect(notice.status == .succeeded)
        #expect(notice.refundedAt == Date(timeIntervalSince1970: 1_800_000_100))
    }

    @Test func alipayFullRefundOnTradeClosedIsARefundNotAClose() throws {
        let (order, refund) = refunded(paid("A-2"), [("RF-1", 1000), ("RF-2", 7888)])
        let notify = factory.refundNotify(channel: "alipay", order: order, refund: refund, eventID: "N-2")
        #expect(String(decoding: notify.body, as: UTF8.self).contains("trade_status=TRADE_CLOSED"))
        let verified = try adapter("alipay").verify(notify.rawCallback())
        #expect(verified.evidence.status == .other("REFUND"))
        #expect(verified.refund?.refundNo == "RF-2")
        #expect(verified.refund?.totalRefundedMinor == 8888)
    }

    @Test func aPaymentNotifyCarriesNoRefund() throws {
        let notify = factory.notify(.valid, channel: "alipay", order: paid("A-3"), eventID: "N-3")
        let verified = try adapter("alipay").verify(notify.rawCallback())
        #expect(verified.refund == nil)
        #expect(verified.evidence.status == .paid)
    }

    @Test(arguments: [RefundStatus.succeeded, .abnormal, .closed])
    func wechatPayRefundEventsAreRecognised(_ status: RefundStatus) throws {
        let (order, refund) = refunded(paid("W-1"), [("RF-1", 1000)], status: status)
        let notify = factory.refundNotify(channel: "wechatpay", order: order, refund: refund, eventID: "E-1")
        let verified = try adapter("wechatpay").verify(notify.rawCallback())
        #expect(verified.evidence.status == .other("REFUND"))
        let notice = try #require(verified.refund)
        #expect(notice.status == status)
        #expect(notice.refundNo == "RF-1")
        #expect(notice.channelRefundID == "50-RF-1")
        #expect(notice.amountMinor == 1000)
        #expect(notice.channelTradeNo == "CT-W-1")
    }

    @Test(arguments: ["alipay", "wechatpay"])
    func aForgedRefundNotifyIsRejected(_ channel: String) {
        let (order, refund) = refunded(paid("F-1"), [("RF-1", 1000)])
        let notify = factory.refundNotify(channel: channel, order: order, refund: refund, eventID: "E-F", forged: true)
        let adapter = adapter(channel)
        expectRejection(.badSignature) { () throws(Rejection) in try adapter.verify(notify.rawCallback()) }
    }

    @Test func aMalformedAlipayRefundFeeIsRejected() {
        let (order, refund) = refunded(paid("A-4"), [("RF-1", 1000)])
        let alipay = Self.channels.alipaySide
        let body = alipay.notifyBody(for: order, notifyID: "N-4", notifyTime: Date(), extra: [("refund_fee", "-1.00"), ("out_biz_no", refund.refundNo)])
        let raw = SimulatedNotify(channel: "alipay", headers: [], body: body).rawCallback()
        let adapter = adapter("alipay")
        expectRejection(.malformed) { () throws(Rejection) in try adapter.verify(raw) }
    }
}
