import CallbackQueue
import Channels
import Foundation
import Orders
import PayhookCore
import Testing
@testable import Workers

/// Refund notifies through the batch plan without I/O: they ask the refund query, never the
/// order query, and only the channel's agreeing answer is applied.
@Suite struct RefundPlanTests {
    let rules = OutcomeRules(retry: RetryPolicy(baseSeconds: 5, factor: 2, maxDelaySeconds: 60, maxAttempts: 3),
                             unknownOrderAttempts: 2)
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func claimed(_ id: Int64, attempt: Int32 = 1) -> ClaimedCallback {
        ClaimedCallback(id: id, receivedAt: now, attempt: attempt, leaseExpiresAt: now, channel: "wechatpay",
                        stored: .success(RawCallback(channel: "wechatpay", body: Array("b\(id)".utf8))))
    }

    func refund(_ number: String, amount: Int64? = 300, status: RefundStatus = .succeeded, id: String? = "50-1") -> RefundEvidence {
        RefundEvidence(channel: "wechatpay", outTradeNo: number, channelTradeNo: "T-1", refundNo: "RF-1", channelRefundID: id,
                       status: status, amountMinor: amount, currency: "CNY", refundedAt: now)
    }

    func verified(_ number: String, _ refund: RefundEvidence) -> Verification {
        .verified(PaymentNotification(
            evidence: OrderEvidence(channel: "wechatpay", outTradeNo: number, channelTradeNo: "T-1", status: .other("REFUND"),
                                    amountMinor: 1000, currency: "CNY", paidAt: nil),
            channelType: .wechatpayV3, eventID: "EV", refund: refund))
    }

    func order(_ number: String, status: OrderStatus) -> OrderSnapshot {
        OrderSnapshot(outTradeNo: number, channel: "wechatpay", channelTradeNo: "T-1", amountMinor: 1000, currency: "CNY",
                      status: status, paidAt: status == .created || status == .closed ? nil : now)
    }

    var key: RefundQueryKey { RefundQueryKey(channel: "wechatpay", outTradeNo: "O-1", refundNo: "RF-1") }

    @Test func aRefundNotifyAsksTheRefundQueryAndAppliesTheAgreeingAnswer() {
        var plan = BatchPlan(claimed: [claimed(1)], verifications: [verified("O-1", refund("O-1"))], rules: rules, startedAt: now)
        #expect(plan.readOrders(["O-1": order("O-1", status: .paid)]).isEmpty)
        #expect(plan.questions.isEmpty, "never the order query: a refund is not a payment")
        #expect(plan.refundQuestions == [key])
        plan.answerRefunds([key: .success(.found(refund("O-1")))])
        let commit = plan.commit(held: [1])
        #expect(commit.items.isEmpty)
        #expect(commit.refunds.map(\.evidence.refundNo) == ["RF-1"])
        let finishes = plan.finishes(commit, decisions: [], refundDecisions: [.refund(from: .paid, to: .paid, amountMinor: 300)])
        #expect(finishes.map(\.outcome) == [.done])
    }

    @Test func aRefundNotifyForAnUnpaidOrderWaitsWithoutAskingAndAClosedOneIsAConflictUnasked() {
        var plan = BatchPlan(claimed: [claimed(1), claimed(2)],
                             verifications: [verified("O-1", refund("O-1")), verified("O-2", refund("O-2"))],
                             rules: rules, startedAt: now)
        _ = plan.readOrders(["O-1": order("O-1", status: .created), "O-2": order("O-2", status: .closed)])
        #expect(plan.refundQuestions.isEmpty)
        let commit = plan.commit(held: [1, 2])
        #expect(commit.refunds.map(\.evidence.outTradeNo) == ["O-2"])
        let finishes = plan.finishes(commit, decisions: [],
                                     refundDecisions: [.conflict(.refundUnpaid, detail: "refund reported for an order that is closed")])
        guard case .retry(_, let reason, _) = finishes[0].outcome else {
            Issue.record("an unpaid order's refund waits: \(finishes[0].outcome)")
            return
        }
        #expect(reason == .refundUnpaid)
        #expect(finishes[1].outcome == .rejected(reason: .refundUnpaid, error: "refund reported for an order that is closed"))
    }

    @Test func theChannelsAnswerDecides() {
        func outcome(_ answer: RefundAnswer) -> (AttemptOutcome, OrderEventRecord?) {
            var plan = BatchPlan(claimed: [claimed(1)], verifications: [verified("O-1", refund("O-1"))], rules: rules, startedAt: now)
            _ = plan.readOrders(["O-1": order("O-1", status: .paid)])
            plan.answerRefunds([key: answer])
            let commit = plan.commit(held: [1])
            #expect(commit.refunds.isEmpty, "nothing applied")
            return (plan.finishes(commit, decisions: []).map(\.outcome)[0], commit.events.first)
        }
        // Not there yet, or still processing: retry.
        for answer in [RefundAnswer.success(.notFound), .success(.found(refund("O-1", status: .processing))),
                       .failure(.transient(.timeout))] {
            let (result, event) = outcome(answer)
            guard case .retry = result else { Issue.record("\(answer) must retry, not \(result)"); continue }
            #expect(event == nil)
        }
        // A contradiction is flagged on the order, never applied.
        for answer in [RefundAnswer.success(.found(refund("O-1", amount: 301))),
                       .success(.found(refund("O-1", status: .closed))), .success(.found(refund("O-1", id: "50-2")))] {
            let (result, event) = outcome(answer)
            guard case .rejected(.queryMismatch, _) = result else { Issue.record("\(answer) must be a mismatch, not \(result)"); continue }
            #expect(event?.flagged == true && event?.reason == .queryMismatch && event?.refundNo == "RF-1")
        }
        guard case .dead(let reason, _) = outcome(.failure(.permanent(.badSignature))).0 else {
            Issue.record("an unverifiable answer is dead, for an operator")
            return
        }
        #expect(reason == .queryFailed)
    }

    @Test func anAlipayNotifyTakesTheAmountFromTheQuery() {
        let notified = RefundEvidence(channel: "alipay", outTradeNo: "O-1", channelTradeNo: "T-1", refundNo: "RF-1", channelRefundID: nil,
                                      status: .succeeded, amountMinor: nil, totalRefundedMinor: 800, currency: "CNY", refundedAt: now)
        var stated = notified
        stated.amountMinor = 300
        stated.totalRefundedMinor = nil
        guard case .confirms(let confirmed) = RefundAgreement.check(notified, .found(stated)) else {
            Issue.record("the query's amount confirms the notify")
            return
        }
        #expect(confirmed.amountMinor == 300)
        #expect(confirmed.totalRefundedMinor == 800)
        var unnamed = stated
        unnamed.amountMinor = nil
        #expect(RefundAgreement.check(notified, .found(unnamed)) == .disagrees("the channel names no refund amount"))
    }
}
