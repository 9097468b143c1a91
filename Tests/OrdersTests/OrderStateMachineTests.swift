import Channels
import Foundation
import Orders
import PayhookCore
import Testing

@Suite struct OrderStateMachineTests {
    let order = OrderSnapshot(outTradeNo: "O-1", channel: "alipay", channelTradeNo: nil, amountMinor: 8888,
                              currency: "CNY", status: .created, paidAt: nil)

    func evidence(_ status: PaymentStatus, amount: Int64 = 8888, currency: String = "CNY", channel: String = "alipay",
                  tradeNo: String? = "T-1") -> OrderEvidence {
        OrderEvidence(channel: channel, outTradeNo: "O-1", channelTradeNo: tradeNo, status: status, amountMinor: amount,
                      currency: currency, paidAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    @Test func createdMovesToPaidOrClosed() {
        #expect(OrderStateMachine.decide(order, evidence(.paid)) == .transition(from: .created, to: .paid))
        #expect(OrderStateMachine.decide(order, evidence(.closed)) == .transition(from: .created, to: .closed))
    }

    @Test func repeatsAreDuplicates() {
        var paid = order
        paid.status = .paid
        paid.channelTradeNo = "T-1"
        #expect(OrderStateMachine.decide(paid, evidence(.paid)) == .duplicate(.paid))
        var closed = order
        closed.status = .closed
        #expect(OrderStateMachine.decide(closed, evidence(.closed)) == .duplicate(.closed))
    }

    @Test func regressionsAndMismatchesAreConflicts() {
        var paid = order
        paid.status = .paid
        paid.channelTradeNo = "T-1"
        #expect(reason(OrderStateMachine.decide(paid, evidence(.closed))) == .statusRegression)
        #expect(reason(OrderStateMachine.decide(paid, evidence(.paid, tradeNo: "T-2"))) == .tradeNoMismatch)
        var closed = order
        closed.status = .closed
        #expect(reason(OrderStateMachine.decide(closed, evidence(.paid))) == .paidAfterClose)
        #expect(reason(OrderStateMachine.decide(order, evidence(.paid, amount: 8887))) == .amountMismatch)
        #expect(reason(OrderStateMachine.decide(order, evidence(.paid, currency: "USD"))) == .currencyMismatch)
        #expect(reason(OrderStateMachine.decide(order, evidence(.paid, channel: "wechatpay"))) == .channelMismatch)
        // A mismatch is a conflict even when the order already reached that state.
        #expect(reason(OrderStateMachine.decide(paid, evidence(.paid, amount: 1))) == .amountMismatch)
    }

    @Test func pendingOrUnknownStatusesChangeNothing() {
        #expect(OrderStateMachine.decide(order, evidence(.pending)) == .noChange)
        #expect(OrderStateMachine.decide(order, evidence(.other("TRADE_REFUND"))) == .noChange)
    }

    @Test func aBatchDecidesEachItemAgainstTheOrderTheItemsBeforeItLeft() {
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        let items = (1...3).map { ApplyItem(source: .callback, callbackID: Int64($0), evidence: evidence(.paid)) }
            + [ApplyItem(source: .callback, callbackID: 4, evidence: evidence(.closed))]
        let plan = OrderBatchPlan(items: items, orders: ["O-1": order], now: now)
        #expect(plan.decisions == [.transition(from: .created, to: .paid), .duplicate(.paid), .duplicate(.paid),
                                   .conflict(.statusRegression, detail: "paid order reported closed")])
        #expect(plan.updates.count == 1)
        #expect(plan.updates.first?.status == .paid)
        #expect(plan.updates.first?.channelTradeNo == "T-1")
        #expect(plan.updates.first?.paidAt == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(plan.events.map(\.kind) == [.transition, .duplicate, .duplicate, .conflict])
        #expect(plan.events.map(\.flagged) == [false, false, false, true])
    }

    @Test func anItemForAMissingOrderDecidesNothing() {
        let plan = OrderBatchPlan(items: [ApplyItem(source: .reconcile, callbackID: nil, evidence: evidence(.paid))],
                                  orders: [:], now: Date())
        #expect(plan.decisions == [nil])
        #expect(plan.updates.isEmpty && plan.events.isEmpty)
    }

    private func reason(_ decision: OrderDecision) -> ReasonCode? {
        if case .conflict(let reason, _) = decision { return reason }
        return nil
    }
}
