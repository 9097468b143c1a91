import CallbackQueue
import Channels
import Foundation
import Orders
import PayhookCore
import Testing
@testable import Workers

/// `cross_check` in the batch plan, without I/O: which verified notifies are applied on
/// their own signature and which still ask the channel.
@Suite struct CrossCheckPlanTests {
    let rules = OutcomeRules(retry: RetryPolicy(baseSeconds: 5, factor: 2, maxDelaySeconds: 60, maxAttempts: 3),
                             unknownOrderAttempts: 2)
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let merchant = MerchantIdentity(appID: "2021000000000001", merchantID: "2088000000000001")
    static let key = QueryKey(channel: "alipay", outTradeNo: "O-1")

    func claimed(_ id: Int64, kind: RawCallback.Kind = .notify) -> ClaimedCallback {
        ClaimedCallback(id: id, receivedAt: now, attempt: 1, leaseExpiresAt: now, channel: "alipay",
                        stored: .success(RawCallback(channel: "alipay", kind: kind, body: Array("b\(id)".utf8))))
    }

    func evidence(status: PaymentStatus = .paid, amount: Int64 = 100, currency: String = "CNY",
                  merchant: MerchantIdentity = Self.merchant, tradeNo: String? = "T-1") -> OrderEvidence {
        OrderEvidence(channel: "alipay", outTradeNo: "O-1", channelTradeNo: tradeNo, status: status, amountMinor: amount,
                      currency: currency, merchant: merchant, paidAt: now, payer: "2088102177846880")
    }

    func order(status: OrderStatus = .created) -> OrderSnapshot {
        OrderSnapshot(outTradeNo: "O-1", channel: "alipay", channelTradeNo: status == .paid ? "T-1" : nil,
                      amountMinor: 100, currency: "CNY", status: status, paidAt: status == .paid ? now : nil)
    }

    /// The plan after stage 2, for these notifies of O-1 under `policy`.
    func plan(_ notified: [OrderEvidence], kind: RawCallback.Kind = .notify, policy: CrossCheck,
              order: OrderSnapshot? = nil) -> BatchPlan {
        let claims = notified.indices.map { claimed(Int64($0 + 1), kind: kind) }
        let verifications = notified.map {
            Verification.verified(PaymentNotification(evidence: $0, channelType: .alipay, eventID: "EV"))
        }
        var plan = BatchPlan(claimed: claims, verifications: verifications, rules: rules, startedAt: now,
                             trusted: policy == .whenUnverified ? ["alipay": Self.merchant] : [:])
        #expect(plan.readOrders(["O-1": order ?? self.order()]).isEmpty)
        return plan
    }

    @Test func aVerifiedMatchingNotifyIsAppliedWithoutAQuery() {
        let plan = plan([evidence()], policy: .whenUnverified)
        #expect(plan.questions.isEmpty, "no query")
        #expect(plan.jobs[0].unqueried)
        let commit = plan.commit(held: [1])
        #expect(commit.items.count == 1)
        // The evidence is the signed notify's, field for field, and the event says so.
        #expect(commit.items.first?.evidence == evidence())
        #expect(commit.items.first?.source == .callback)
        #expect(commit.items.first?.note == NotifyTrust.eventNote)
        let finishes = plan.finishes(commit, decisions: [.transition(from: .created, to: .paid)])
        #expect(finishes.map(\.outcome) == [.done])
        #expect(finishes[0].channelTradeNo == "T-1")
    }

    @Test func alwaysAsksTheSameNotify() {
        var plan = plan([evidence()], policy: .always)
        #expect(plan.questions == [Self.key])
        #expect(!plan.jobs[0].unqueried)
        plan.answer([Self.key: .success(.found(evidence()))])
        #expect(plan.commit(held: [1]).items.first?.note == nil, "confirmed by the query")
    }

    static let unprovable: [(String, PaymentStatus, MerchantIdentity, String?)] = [
        ("a close", .closed, merchant, "T-1"),
        ("a pending status", .pending, merchant, "T-1"),
        ("another app", .paid, MerchantIdentity(appID: "2021000000009999", merchantID: "2088000000000001"), "T-1"),
        ("another merchant", .paid, MerchantIdentity(appID: "2021000000000001", merchantID: "2088000000009999"), "T-1"),
        ("no merchant", .paid, MerchantIdentity(appID: "2021000000000001", merchantID: nil), "T-1"),
        ("no trade number", .paid, merchant, nil),
        ("an empty trade number", .paid, merchant, ""),
    ]

    @Test(arguments: CrossCheckPlanTests.unprovable)
    func whatTheNotifyCannotProveStillAsks(_ what: String, status: PaymentStatus, merchant: MerchantIdentity,
                                           tradeNo: String?) {
        let plan = plan([evidence(status: status, merchant: merchant, tradeNo: tradeNo)], policy: .whenUnverified)
        #expect(plan.questions == [Self.key], "\(what) is asked about")
        #expect(!plan.jobs[0].unqueried)
        #expect(plan.commit(held: [1]).items.isEmpty, "nothing applied before the answer")
    }

    @Test func aBrowserReturnStillAsks() {
        let plan = plan([evidence()], kind: .return, policy: .whenUnverified)
        #expect(plan.questions == [Self.key])
        #expect(!plan.jobs[0].unqueried)
    }

    @Test func aChannelConfiguredWithoutItsMerchantIdStillAsks() {
        let claims = [claimed(1)]
        let verification = Verification.verified(PaymentNotification(evidence: evidence(), channelType: .alipay, eventID: "EV"))
        var plan = BatchPlan(claimed: claims, verifications: [verification], rules: rules, startedAt: now,
                             trusted: ["alipay": MerchantIdentity(appID: Self.merchant.appID, merchantID: nil)])
        _ = plan.readOrders(["O-1": order()])
        #expect(plan.questions == [Self.key])
    }

    /// A mismatching amount or currency is never applied: flagged as a conflict exactly as
    /// under `always` (which decides it before asking, too), never a transition.
    static let mismatches: [(Int64, String, ReasonCode)] = [(999, "CNY", .amountMismatch), (100, "USD", .currencyMismatch)]

    @Test(arguments: CrossCheckPlanTests.mismatches)
    func aMismatchIsDecidedAsUnderAlways(amount: Int64, currency: String, reason: ReasonCode) {
        let notified = evidence(amount: amount, currency: currency)
        let trusted = plan([notified], policy: .whenUnverified)
        let always = plan([notified], policy: .always)
        #expect(trusted.jobs[0].intent == always.jobs[0].intent)
        #expect(!trusted.jobs[0].unqueried)
        #expect(trusted.commit(held: [1]).items.first?.note == nil)
        let decision = OrderStateMachine.decide(order(), notified)
        guard case .conflict(reason, _) = decision else { Issue.record("\(decision)"); return }
    }

    /// A status kept verbatim (a refund) moves nothing: done without asking, in both modes.
    @Test func anUnmappedStatusIsDoneAsUnderAlways() {
        let trusted = plan([evidence(status: .other("TRADE_REFUND"))], policy: .whenUnverified)
        #expect(trusted.jobs[0].intent == .finished(.done))
        #expect(!trusted.jobs[0].unqueried && trusted.commit(held: [1]).items.isEmpty)
        #expect(plan([evidence(status: .other("TRADE_REFUND"))], policy: .always).jobs[0].intent == .finished(.done))
    }

    @Test func aPaidOrderIsADuplicateAsUnderAlways() {
        let trusted = plan([evidence()], policy: .whenUnverified, order: order(status: .paid))
        #expect(trusted.questions.isEmpty)
        #expect(!trusted.jobs[0].unqueried, "a repeat is recorded, not applied from the notify")
        #expect(trusted.jobs[0].intent == plan([evidence()], policy: .always, order: order(status: .paid)).jobs[0].intent)
    }

    @Test func repeatsOfOneOrderInABatchAreAppliedOnceAndAskedAtMostOnce() {
        let trusted = plan([evidence(), evidence()], policy: .whenUnverified)
        #expect(trusted.questions.isEmpty)
        let items = trusted.commit(held: [1, 2]).items
        let applied = OrderBatchPlan(items: items, orders: ["O-1": order()], now: now)
        #expect(applied.decisions == [.transition(from: .created, to: .paid), .duplicate(.paid)])
        #expect(applied.events.first?.detail == NotifyTrust.eventNote)
        #expect(plan([evidence(), evidence(), evidence()], policy: .always).questions == [Self.key])
    }

    @Test func policyNames() {
        #expect(CrossCheck(name: "always") == .always)
        #expect(CrossCheck(name: "when_unverified") == .whenUnverified)
        #expect(CrossCheck(name: "never") == nil && CrossCheck(name: "Always") == nil)
        #expect(CrossCheck.whenUnverified.description == "when_unverified")
    }
}
