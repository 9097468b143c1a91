import Foundation
import Orders
import PayhookCore
import Testing

@Suite struct RefundStateMachineTests {
    let paid = OrderSnapshot(outTradeNo: "O-1", channel: "wechatpay", channelTradeNo: "T-1", amountMinor: 8888,
                             currency: "CNY", status: .paid, paidAt: Date(timeIntervalSince1970: 1_800_000_000))

    func refund(_ number: String, _ amount: Int64?, status: RefundStatus = .succeeded, channel: String = "wechatpay",
                currency: String = "CNY") -> RefundEvidence {
        RefundEvidence(channel: channel, outTradeNo: "O-1", channelTradeNo: "T-1", refundNo: number, channelRefundID: "R-\(number)",
                       status: status, amountMinor: amount, currency: currency, refundedAt: nil)
    }

    func record(_ number: String, _ amount: Int64, _ status: RefundStatus) -> RefundRecord {
        RefundRecord(outTradeNo: "O-1", refundNo: number, channel: "wechatpay", channelRefundID: nil, amountMinor: amount,
                     currency: "CNY", status: status)
    }

    @Test func aPartialRefundKeepsTheOrderPaidAndTheRestMakesItRefunded() {
        #expect(RefundStateMachine.decide(paid, known: nil, refund("RF-1", 1000)) == .refund(from: .paid, to: .paid, amountMinor: 1000))
        var partly = paid
        partly.refundedMinor = 1000
        #expect(RefundStateMachine.decide(partly, known: nil, refund("RF-2", 7888)) == .refund(from: .paid, to: .refunded, amountMinor: 7888))
    }

    @Test func aRefundNeverPaysAnOrder() {
        for status in [OrderStatus.created, .closed] {
            var order = paid
            order.status = status
            order.paidAt = nil
            guard case .conflict(let reason, _) = RefundStateMachine.decide(order, known: nil, refund("RF-1", 100)) else {
                Issue.record("a refund of a \(status) order must be a conflict")
                continue
            }
            #expect(reason == .refundUnpaid)
        }
    }

    @Test func moreThanWasPaidIsAFlaggedConflict() {
        var partly = paid
        partly.refundedMinor = 8000
        #expect(reason(RefundStateMachine.decide(partly, known: nil, refund("RF-2", 889))) == .refundExceedsPaid)
        #expect(reason(RefundStateMachine.decide(paid, known: nil, refund("RF-1", 8889))) == .refundExceedsPaid)
        var full = paid
        full.status = .refunded
        full.refundedMinor = 8888
        #expect(reason(RefundStateMachine.decide(full, known: nil, refund("RF-3", 1))) == .refundExceedsPaid)
        #expect(reason(RefundStateMachine.decide(paid, known: nil, refund("RF-4", Int64.max))) == .refundExceedsPaid)
    }

    @Test func repeatsAreDuplicatesAndAChangedAmountIsAConflict() {
        var partly = paid
        partly.refundedMinor = 1000
        let known = record("RF-1", 1000, .succeeded)
        #expect(RefundStateMachine.decide(partly, known: known, refund("RF-1", 1000)) == .duplicate(.paid))
        // Alipay's notify names no amount of its own: the recorded one stands.
        #expect(RefundStateMachine.decide(partly, known: known, refund("RF-1", nil)) == .duplicate(.paid))
        #expect(reason(RefundStateMachine.decide(partly, known: known, refund("RF-1", 2000))) == .refundMismatch)
        #expect(reason(RefundStateMachine.decide(partly, known: known, refund("RF-1", 1000, status: .abnormal))) == .refundMismatch)
    }

    @Test func aProcessingRefundFinishesOnceAndOtherStatesMoveNoMoney() {
        let processing = record("RF-1", 1000, .processing)
        #expect(RefundStateMachine.decide(paid, known: processing, refund("RF-1", 1000)) == .refund(from: .paid, to: .paid, amountMinor: 1000))
        #expect(RefundStateMachine.decide(paid, known: processing, refund("RF-1", 1000, status: .abnormal)) == .state(.abnormal))
        #expect(RefundStateMachine.decide(paid, known: nil, refund("RF-2", 1000, status: .closed)) == .state(.closed))
        #expect(RefundStateMachine.decide(paid, known: processing, refund("RF-1", 1000, status: .processing)) == .duplicate(.paid))
    }

    @Test func anotherChannelOrCurrencyIsAConflict() {
        #expect(reason(RefundStateMachine.decide(paid, known: nil, refund("RF-1", 100, channel: "alipay"))) == .channelMismatch)
        #expect(reason(RefundStateMachine.decide(paid, known: nil, refund("RF-1", 100, currency: "USD"))) == .currencyMismatch)
    }

    @Test func aBatchAppliesPaymentsFirstThenEachRefundOnceInTurn() {
        var created = paid
        created.status = .created
        created.paidAt = nil
        let payment = ApplyItem(source: .callback, callbackID: 1, evidence: OrderEvidence(
            channel: "wechatpay", outTradeNo: "O-1", channelTradeNo: "T-1", status: .paid, amountMinor: 8888, currency: "CNY",
            paidAt: Date(timeIntervalSince1970: 1_800_000_000)))
        let refunds = [
            RefundItem(source: .callback, callbackID: 2, evidence: refund("RF-1", 1000)),
            RefundItem(source: .callback, callbackID: 3, evidence: refund("RF-1", 1000)),
            RefundItem(source: .callback, callbackID: 4, evidence: refund("RF-2", 7888)),
            RefundItem(source: .callback, callbackID: 5, evidence: refund("RF-3", 1)),
        ]
        let plan = OrderBatchPlan(items: [payment], refunds: refunds, orders: ["O-1": created], now: Date())
        #expect(plan.decisions == [.transition(from: .created, to: .paid)])
        #expect(plan.refundDecisions == [
            .refund(from: .paid, to: .paid, amountMinor: 1000), .duplicate(.paid),
            .refund(from: .paid, to: .refunded, amountMinor: 7888),
            .conflict(.refundExceedsPaid, detail: "refunded 8888 + 1 of 8888 paid (minor units)"),
        ])
        #expect(plan.updates.count == 1)
        #expect(plan.updates.first?.status == .refunded)
        #expect(plan.updates.first?.refundedMinor == 8888)
        #expect(plan.refundWrites.map(\.refundNo) == ["RF-1", "RF-2"])
        #expect(plan.refundWrites.allSatisfy { $0.status == .succeeded && $0.refundedAt != nil })
        #expect(plan.events.map(\.kind) == [.transition, .refund, .duplicate, .refund, .conflict])
        #expect(plan.events.map(\.refundMinor) == [nil, 1000, nil, 7888, nil])
        #expect(plan.events.last?.flagged == true)
    }

    func reason(_ decision: RefundDecision) -> ReasonCode? {
        if case .conflict(let reason, _) = decision { return reason }
        return nil
    }
}
