import CallbackQueue
import Channels
import Foundation
import Orders
import PayhookCore
import Testing
@testable import Workers

/// The batch plan without I/O: each stage fed what the driver would have read, in the
/// manner of postgres-nio's state-machine tests. `BatchProcessor` runs these same stages.
@Suite struct BatchPlanTests {
    let rules = OutcomeRules(retry: RetryPolicy(baseSeconds: 5, factor: 2, maxDelaySeconds: 60, maxAttempts: 3),
                             unknownOrderAttempts: 2)
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func claimed(_ id: Int64, channel: String = "alipay", attempt: Int32 = 1) -> ClaimedCallback {
        ClaimedCallback(id: id, receivedAt: now, attempt: attempt, leaseExpiresAt: now, channel: channel,
                        stored: .success(RawCallback(channel: channel, body: Array("b\(id)".utf8))))
    }

    func evidence(_ number: String, status: PaymentStatus = .paid, amount: Int64 = 100,
                  tradeNo: String? = "T-1") -> OrderEvidence {
        OrderEvidence(channel: "alipay", outTradeNo: number, channelTradeNo: tradeNo, status: status,
                      amountMinor: amount, currency: "CNY", paidAt: now)
    }

    func verified(_ number: String, status: PaymentStatus = .paid, amount: Int64 = 100) -> Verification {
        .verified(PaymentNotification(evidence: evidence(number, status: status, amount: amount), channelType: .alipay,
                                      eventID: "EV"))
    }

    func order(_ number: String, status: OrderStatus = .created, amount: Int64 = 100,
               tradeNo: String? = nil) -> OrderSnapshot {
        OrderSnapshot(outTradeNo: number, channel: "alipay", channelTradeNo: tradeNo, amountMinor: amount,
                      currency: "CNY", status: status, paidAt: status == .paid ? now : nil)
    }

    func plan(_ claims: [ClaimedCallback], _ verifications: [Verification]) -> BatchPlan {
        BatchPlan(claimed: claims, verifications: verifications, rules: rules, startedAt: now)
    }

    func outcomes(_ plan: BatchPlan, held: Set<Int64>? = nil, decisions: (BatchPlan.Commit) -> [OrderDecision?]) -> [AttemptOutcome] {
        let commit = plan.commit(held: held ?? Set(plan.jobs.map(\.claimed.id)))
        return plan.finishes(commit, decisions: decisions(commit)).map(\.outcome)
    }

    @Test func aConfirmedPaymentIsAppliedAndDone() {
        var plan = plan([claimed(1)], [verified("O-1")])
        #expect(plan.orderNumbers == ["O-1"])
        #expect(plan.readOrders(["O-1": order("O-1")]).isEmpty)
        #expect(plan.questions == [QueryKey(channel: "alipay", outTradeNo: "O-1")])
        plan.answer([QueryKey(channel: "alipay", outTradeNo: "O-1"): .success(.found(evidence("O-1")))])
        let commit = plan.commit(held: [1])
        #expect(commit.items.map(\.evidence.outTradeNo) == ["O-1"])
        #expect(commit.itemJobs == [0])
        #expect(commit.events.isEmpty)
        let finishes = plan.finishes(commit, decisions: [.transition(from: .created, to: .paid)])
        #expect(finishes.map(\.outcome) == [.done])
        #expect(finishes[0].outTradeNo == "O-1" && finishes[0].channelTradeNo == "T-1")
    }

    @Test func anUnknownOrderRetriesWithoutAskingThenDies() {
        var plan = plan([claimed(1), claimed(2, attempt: 2)], [verified("O-1"), verified("O-2")])
        #expect(plan.readOrders([:]).isEmpty)
        #expect(plan.questions.isEmpty)
        let result = outcomes(plan) { _ in [] }
        guard case .retry(_, .unknownOrder?, _) = result[0] else { Issue.record("expected a retry: \(result[0])"); return }
        #expect(result[1] == .dead(reason: .unknownOrder, error: "no such order in orders"))
    }

    @Test func duplicatesAndMismatchesAreDecidedWithoutAQuery() {
        var plan = plan([claimed(1), claimed(2)], [verified("O-1"), verified("O-2", amount: 999)])
        _ = plan.readOrders(["O-1": order("O-1", status: .paid, tradeNo: "T-1"), "O-2": order("O-2")])
        #expect(plan.questions.isEmpty, "a duplicate and an amount mismatch need no channel")
        let result = outcomes(plan) { commit in
            #expect(commit.items.count == 2)
            return [.duplicate(.paid), .conflict(.amountMismatch, detail: "d")]
        }
        #expect(result == [.done, .rejected(reason: .amountMismatch, error: "d")])
    }

    @Test func oneOrderNotifiedTwiceIsAskedOnce() {
        var plan = plan([claimed(1), claimed(2)], [verified("O-1"), verified("O-1")])
        _ = plan.readOrders(["O-1": order("O-1")])
        #expect(plan.questions.count == 1)
        plan.answer([QueryKey(channel: "alipay", outTradeNo: "O-1"): .success(.found(evidence("O-1")))])
        #expect(plan.commit(held: [1, 2]).items.count == 2, "both applied; the order decides the second is a duplicate")
    }

    @Test func queryFailuresRetryDieOrFlag() {
        let numbers = ["O-1", "O-2", "O-3", "O-4", "O-5"]
        var plan = plan((1...5).map { claimed(Int64($0)) }, numbers.map { verified($0) })
        _ = plan.readOrders(Dictionary(uniqueKeysWithValues: numbers.map { ($0, order($0)) }))
        plan.answer([
            QueryKey(channel: "alipay", outTradeNo: "O-1"): .failure(.transient(.timeout)),
            QueryKey(channel: "alipay", outTradeNo: "O-2"): .failure(.permanent(.badSignature, "response signature")),
            QueryKey(channel: "alipay", outTradeNo: "O-3"): .success(.found(evidence("O-3", status: .closed))),
            QueryKey(channel: "alipay", outTradeNo: "O-4"): .success(.notFound(outTradeNo: "O-4")),
            // O-5: no answer at all (no client for the channel)
        ])
        let commit = plan.commit(held: [1, 2, 3, 4, 5])
        #expect(commit.items.isEmpty)
        #expect(commit.events.map(\.reason) == [.queryMismatch])
        #expect(commit.events.first?.outTradeNo == "O-3" && commit.events.first?.flagged == true)
        let result = plan.finishes(commit, decisions: []).map(\.outcome)
        guard case .retry(_, .queryUnavailable?, _) = result[0] else { Issue.record("\(result[0])"); return }
        #expect(result[1] == .dead(reason: .queryFailed, error: "permanent bad_signature: response signature"))
        guard case .rejected(.queryMismatch, _) = result[2] else { Issue.record("\(result[2])"); return }
        guard case .retry(_, .queryNotFound?, _) = result[3] else { Issue.record("\(result[3])"); return }
        #expect(result[4] == .dead(reason: .unknownChannel, error: "channel is not configured"))
    }

    @Test func aBadSignatureOnAnOpenOrderAsksTheChannelWithinTheRateLimit() {
        let rejected = Verification.rejected(Rejection(.badSignature), claimedOutTradeNo: "O-1")
        var plan = plan([claimed(1), claimed(2)], [rejected, .rejected(Rejection(.badSignature), claimedOutTradeNo: "O-2")])
        #expect(plan.readOrders(["O-1": order("O-1"), "O-2": order("O-2")]) == ["O-1", "O-2"])
        plan.reconcile([order("O-1")])  // the shared limit allows O-1 only
        #expect(plan.questions == [QueryKey(channel: "alipay", outTradeNo: "O-1")])
        plan.answer([QueryKey(channel: "alipay", outTradeNo: "O-1"): .success(.found(evidence("O-1")))])
        let commit = plan.commit(held: [1, 2])
        #expect(commit.items.map(\.source) == [.reconcile])
        #expect(commit.itemJobs == [nil], "the reconciliation does not finish the forged callback")
        #expect(outcomes(plan) { _ in [.transition(from: .created, to: .paid)] }.map(\.reason) == [.badSignature, .badSignature])
    }

    @Test func aGenuineCallbackForAnotherMerchantIsFlaggedOnTheOrder() {
        let mismatch = Verification.rejected(Rejection(.merchantMismatch, "app_id"), claimedOutTradeNo: "O-1")
        var plan = plan([claimed(1)], [mismatch])
        #expect(plan.readOrders(["O-1": order("O-1")]).isEmpty, "no reconciliation after a merchant mismatch")
        let commit = plan.commit(held: [1])
        #expect(commit.events.map(\.reason) == [.merchantMismatch])
        #expect(commit.events.first?.flagged == true)
        #expect(outcomes(plan) { _ in [] } == [.rejected(reason: .merchantMismatch, error: "merchant_mismatch: app_id")])
    }

    @Test func aCorruptRowAndAnUnknownChannelAreDeadNotRejected() {
        let corrupt = CorruptRow(column: "headers", problem: "is not an array of [name, value] pairs")
        let plan = plan([claimed(1), claimed(2)], [.corrupt(corrupt), .unknownChannel])
        #expect(plan.orderNumbers.isEmpty)
        #expect(outcomes(plan) { _ in [] } == [
            .dead(reason: .corruptRow, error: "stored headers is not an array of [name, value] pairs"),
            .dead(reason: .unknownChannel, error: "channel is not configured"),
        ])
    }

    @Test func onlyHeldLeasesAreApplied() {
        var plan = plan([claimed(1), claimed(2)], [verified("O-1"), verified("O-2")])
        _ = plan.readOrders(["O-1": order("O-1"), "O-2": order("O-2")])
        plan.answer([
            QueryKey(channel: "alipay", outTradeNo: "O-1"): .success(.found(evidence("O-1"))),
            QueryKey(channel: "alipay", outTradeNo: "O-2"): .success(.found(evidence("O-2"))),
        ])
        let commit = plan.commit(held: [2])
        #expect(commit.items.map(\.evidence.outTradeNo) == ["O-2"])
        // The lost one keeps no outcome of its own; finish's fence logs it as lease_lost.
        #expect(plan.finishes(commit, decisions: [.transition(from: .created, to: .paid)]).map(\.outcome) == [.released, .done])
    }

    @Test func aForgedHugeOrderNumberIsNotStored() {
        let huge = String(repeating: "9", count: 60_000)
        let plan = plan([claimed(1)], [.rejected(Rejection(.badSignature), claimedOutTradeNo: huge)])
        #expect(plan.orderNumbers.isEmpty)
        #expect(BatchPlan.storable("O-1") == "O-1" && BatchPlan.storable("a\u{0}b") == nil)
    }

    @Test func aJobThatFailsAloneIsRetriedWithNothingThatCouldFailAgain() {
        var plan = plan([claimed(1), claimed(2)], [verified("O-1"), verified("O-2", amount: 5)])
        _ = plan.readOrders(["O-1": order("O-1"), "O-2": order("O-2")])
        plan.answer([QueryKey(channel: "alipay", outTradeNo: "O-1"): .success(.found(evidence("O-1")))])
        #expect(plan.alone(1).jobs.map(\.claimed.id) == [2])
        let failed = plan.failedAlone(0, error: "duplicate key")
        #expect(failed.jobs.count == 1 && failed.jobs[0].outTradeNo == nil && failed.jobs[0].conflictEvent == nil)
        let commit = failed.commit(held: [1])
        #expect(commit.items.isEmpty && commit.events.isEmpty)
        guard case .retry(_, .applyFailed?, "duplicate key") = failed.finishes(commit, decisions: [])[0].outcome else {
            Issue.record("expected a retry")
            return
        }
    }
}
