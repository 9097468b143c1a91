import CallbackQueue
import Channels
import Foundation
import Orders
import PayhookCore
import Testing
import Workers

/// The pipeline's decisions without I/O: what a query answer means, and which attempt
/// outcome each result becomes.
@Suite struct PipelineRulesTests {
    let notified = OrderEvidence(channel: "alipay", outTradeNo: "O-1", channelTradeNo: "T-1", status: .paid,
                                 amountMinor: 8888, currency: "CNY", paidAt: nil)

    func answer(_ status: PaymentStatus, amount: Int64 = 8888, tradeNo: String? = "T-1") -> OrderQueryResult {
        .found(OrderEvidence(channel: "alipay", outTradeNo: "O-1", channelTradeNo: tradeNo, status: status,
                             amountMinor: amount, currency: "CNY", paidAt: Date(timeIntervalSince1970: 1_800_000_000)))
    }

    @Test func aMatchingAnswerConfirmsAndCompletesTheNotification() {
        var bare = notified
        bare.channelTradeNo = nil
        guard case .confirms(let evidence) = QueryAgreement.check(bare, answer(.paid)) else {
            Issue.record("expected confirmation")
            return
        }
        #expect(evidence.channelTradeNo == "T-1")
        #expect(evidence.paidAt == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(evidence.amountMinor == 8888)
    }

    @Test func aChannelThatDoesNotKnowThePaymentYetMeansRetry() {
        #expect(QueryAgreement.check(notified, answer(.pending)) == .notYet(reason: .queryPending))
        #expect(QueryAgreement.check(notified, .notFound(outTradeNo: "O-1")) == .notYet(reason: .queryNotFound))
    }

    @Test func contradictionsAreDisagreements() {
        for contradiction in [answer(.closed), answer(.paid, amount: 100), answer(.paid, tradeNo: "T-2"),
                              answer(.other("TRADE_REFUND"))] {
            guard case .disagrees = QueryAgreement.check(notified, contradiction) else {
                Issue.record("expected disagreement for \(contradiction)")
                continue
            }
        }
    }

    @Test func aPendingNotificationTakesTheAnswerAsEvidence() {
        var pending = notified
        pending.status = .pending
        guard case .confirms(let evidence) = QueryAgreement.check(pending, answer(.paid, amount: 8888)) else {
            Issue.record("expected the answer as evidence")
            return
        }
        #expect(evidence.status == .paid)
        #expect(QueryAgreement.check(pending, answer(.pending)) == .nothingToApply)
        #expect(QueryAgreement.check(pending, .notFound(outTradeNo: "O-1")) == .nothingToApply)
    }

    @Test func transientFailuresRetryThenDie() {
        let rules = OutcomeRules(retry: RetryPolicy(baseSeconds: 1, factor: 2, maxDelaySeconds: 10, maxAttempts: 3),
                                 unknownOrderAttempts: 2)
        guard case .retry(let delay, .queryUnavailable?, _) = rules.transient(attempt: 1, reason: .queryUnavailable, error: "e")
        else {
            Issue.record("expected a retry")
            return
        }
        #expect(delay >= 0 && delay <= 1)
        #expect(rules.transient(attempt: 3, reason: .queryUnavailable, error: "e")
            == .dead(reason: .queryUnavailable, error: "e"))
        // Unknown orders have their own, shorter budget.
        guard case .retry(_, .unknownOrder?, _) = rules.unknownOrder(attempt: 1) else {
            Issue.record("expected a retry")
            return
        }
        guard case .dead(.unknownOrder?, _) = rules.unknownOrder(attempt: 2) else {
            Issue.record("expected dead")
            return
        }
    }

    @Test func appliedDecisionsFinishTheCallback() {
        let rules = OutcomeRules(retry: RetryPolicy(), unknownOrderAttempts: 5)
        #expect(rules.applied(.transition(from: .created, to: .paid)) == .done)
        #expect(rules.applied(.duplicate(.paid)) == .done)
        #expect(rules.applied(.conflict(.amountMismatch, detail: "d")) == .rejected(reason: .amountMismatch, error: "d"))
    }
}
