import CallbackQueue
import Channels
import Foundation
import Orders
import PayhookCore

/// One question for a channel's query API; a batch asks each order once.
struct QueryKey: Hashable, Sendable {
    let channel: String
    let outTradeNo: String
}

typealias QueryAnswer = Result<OrderQueryResult, QueryError>

/// One question for a channel's refund-query API.
struct RefundQueryKey: Hashable, Sendable {
    let channel: String
    let outTradeNo: String
    let refundNo: String
}

typealias RefundAnswer = Result<RefundQueryResult, QueryError>

/// What the verify stage found for one claimed callback.
enum Verification: Sendable {
    case verified(PaymentNotification)
    case rejected(Rejection, claimedOutTradeNo: String?)
    case unknownChannel
    case corrupt(CorruptRow)
}

/// The decisions for one claimed batch. Pure: `BatchProcessor` does the reading and
/// writing and hands each stage what it read; the plan only decides.
///
/// Stages: verifications (`init`) → the orders they name (`readOrders`) → the orders
/// reconciliation may ask about (`reconcile`) → the channels' answers (`answer`) → what
/// the fenced transaction writes (`commit`).
struct BatchPlan {
    /// Where one callback stands.
    struct Job {
        enum Intent: Equatable {
            /// The outcome is known; nothing to apply.
            case finished(AttemptOutcome)
            /// Ask the channel before applying.
            case query(OrderEvidence)
            /// Apply this evidence under lock; the decision gives the outcome.
            case apply(ApplyItem)
            /// A refund notify: ask the channel's refund query before applying.
            case refundQuery(RefundEvidence)
            /// Apply this refund under lock.
            case applyRefund(RefundItem)
        }

        let claimed: ClaimedCallback
        var outTradeNo: String?
        var channelTradeNo: String?
        var intent: Intent
        /// A flagged event recorded with the outcome (merchant or query mismatch).
        var conflictEvent: OrderEventRecord?
        /// After a rejected signature: the order whose state the channel is asked about.
        var reconcileOrder: OrderSnapshot?
        /// What that answer lets us apply.
        var reconcileItem: ApplyItem?
        /// Applied from the verified notify alone, without a query (`cross_check: when_unverified`).
        var unqueried = false
    }

    /// What the fenced transaction writes.
    struct Commit {
        var items: [ApplyItem]
        /// For each item, the job it finishes; nil for a reconciliation item.
        var itemJobs: [Int?]
        var events: [OrderEventRecord]
        var refunds: [RefundItem] = []
        /// For each refund, the job it finishes.
        var refundJobs: [Int] = []
    }

    /// Rejections after which the channel is asked about the order anyway: a misconfigured
    /// key or allowlist must not leave a paid order unpaid, and the answer alone can move it.
    static let reconcileAfter: Set<ReasonCode> = [.badSignature, .unknownKey, .decryptFailed, .ipNotAllowed]

    private(set) var jobs: [Job]
    let rules: OutcomeRules
    let startedAt: Date
    /// The channels under `cross_check: when_unverified`, each with the app and merchant its
    /// notifies must name to be applied without a query; a channel not here is `always`.
    let trusted: [String: MerchantIdentity]
    private var orders: [String: OrderSnapshot] = [:]

    init(claimed: [ClaimedCallback], verifications: [Verification], rules: OutcomeRules, startedAt: Date,
         trusted: [String: MerchantIdentity] = [:]) {
        precondition(claimed.count == verifications.count, "one verification per claimed callback")
        self.rules = rules
        self.startedAt = startedAt
        self.trusted = trusted
        jobs = zip(claimed, verifications).map { callback, verification in
            switch verification {
            case .unknownChannel:
                Job(claimed: callback, intent: .finished(.dead(reason: .unknownChannel, error: "channel is not configured")))
            case .corrupt(let problem):
                // Perhaps genuine: dead, so an operator looks and replays it once mended.
                Job(claimed: callback, intent: .finished(.dead(reason: .corruptRow, error: problem.description)))
            case .rejected(let rejection, let outTradeNo):
                Job(claimed: callback, outTradeNo: outTradeNo.flatMap(Self.storable),
                    intent: .finished(.rejected(reason: rejection.reason, error: rejection.description)))
            case .verified(let notification):
                Job(claimed: callback, outTradeNo: Self.storable(notification.outTradeNo),
                    channelTradeNo: notification.channelTradeNo.flatMap(Self.storable),
                    intent: notification.refund.map { Job.Intent.refundQuery($0) } ?? .query(notification.evidence))
            }
        }
    }

    /// An order or trade number as it may be stored and indexed: channels use at most 64
    /// characters; a forger's 60 KB "order number" must not be able to fail the batch's
    /// write (an index entry has a size limit) and jam the queue.
    static func storable(_ number: String) -> String? {
        number.utf8.count <= 128 && number.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
            ? number : nil
    }

    /// The orders to read.
    var orderNumbers: [String] { jobs.compactMap(\.outTradeNo) }

    /// Stage 2, with the orders as read (unlocked): unknown orders, mismatches and
    /// duplicates need no query, nor, on a `when_unverified` channel, a notify that
    /// `NotifyTrust` admits (the apply re-decides it against the locked order). Returns the
    /// orders whose reconciliation query to claim.
    mutating func readOrders(_ orders: [String: OrderSnapshot]) -> [String] {
        self.orders = orders
        var reconcileCandidates: [String] = []
        for index in jobs.indices {
            let job = jobs[index]
            switch job.intent {
            case .query(let evidence):
                guard let order = orders[evidence.outTradeNo] else {
                    jobs[index].intent = .finished(rules.unknownOrder(attempt: job.claimed.attempt))
                    continue
                }
                switch OrderStateMachine.decide(order, evidence) {
                case .conflict, .duplicate:
                    jobs[index].intent = .apply(ApplyItem(source: .callback, callbackID: job.claimed.id, evidence: evidence))
                case .noChange where evidence.status != .pending:
                    jobs[index].intent = .finished(.done)
                case .transition where admitsAlone(job, evidence, order):
                    jobs[index].intent = .apply(ApplyItem(source: .callback, callbackID: job.claimed.id,
                                                          evidence: evidence, note: NotifyTrust.eventNote))
                    jobs[index].unqueried = true
                case .noChange, .transition:
                    break  // ask the channel
                }
            case .finished(.rejected(let reason, _)):
                guard let outTradeNo = job.outTradeNo, let order = orders[outTradeNo] else { continue }
                if reason == .merchantMismatch {
                    jobs[index].conflictEvent = OrderEventRecord(
                        outTradeNo: outTradeNo, callbackID: job.claimed.id, source: .callback, kind: .conflict,
                        fromStatus: order.status, toStatus: nil, flagged: true, reason: .merchantMismatch,
                        detail: "a genuine callback names another app or merchant")
                }
                if Self.reconcileAfter.contains(reason), order.status == .created {
                    reconcileCandidates.append(outTradeNo)
                }
            case .refundQuery(let refund):
                guard let order = orders[refund.outTradeNo] else {
                    jobs[index].intent = .finished(rules.unknownOrder(attempt: job.claimed.attempt))
                    continue
                }
                if order.status == .created {
                    // Never read as a payment; its payment may be on its way: wait, then dead.
                    jobs[index].intent = .finished(rules.transient(
                        attempt: job.claimed.attempt, reason: .refundUnpaid, error: "refund notify for an order that is not paid"))
                } else if order.status == .closed || order.channel != refund.channel || order.currency != refund.currency {
                    // A conflict whatever the channel answers: decided under lock, no query.
                    jobs[index].intent = .applyRefund(RefundItem(source: .callback, callbackID: job.claimed.id, evidence: refund))
                }
            case .finished, .apply, .applyRefund:
                break
            }
        }
        return reconcileCandidates
    }

    /// Whether the job's verified notify may stand without the channel's answer.
    private func admitsAlone(_ job: Job, _ evidence: OrderEvidence, _ order: OrderSnapshot) -> Bool {
        guard let expected = trusted[job.claimed.channel], case .success(let raw) = job.claimed.stored else { return false }
        return NotifyTrust.admits(evidence, kind: raw.kind, order: order, merchant: expected)
    }

    /// Stage 3, with the orders the shared rate limit lets this batch ask about now.
    mutating func reconcile(_ allowed: [OrderSnapshot]) {
        var byNumber = Dictionary(allowed.map { ($0.outTradeNo, $0) }, uniquingKeysWith: { first, _ in first })
        for index in jobs.indices {
            guard let outTradeNo = jobs[index].outTradeNo, let order = byNumber.removeValue(forKey: outTradeNo)
            else { continue }
            jobs[index].reconcileOrder = order
        }
    }

    /// The questions for the channels, each order once, in batch order.
    var questions: [QueryKey] {
        var seen: Set<QueryKey> = []
        var keys: [QueryKey] = []
        for job in jobs {
            if case .query(let evidence) = job.intent {
                let key = QueryKey(channel: evidence.channel, outTradeNo: evidence.outTradeNo)
                if seen.insert(key).inserted { keys.append(key) }
            }
            if let order = job.reconcileOrder {
                let key = QueryKey(channel: order.channel, outTradeNo: order.outTradeNo)
                if seen.insert(key).inserted { keys.append(key) }
            }
        }
        return keys
    }

    /// The refund questions, each refund once, in batch order.
    var refundQuestions: [RefundQueryKey] {
        var seen: Set<RefundQueryKey> = []
        var keys: [RefundQueryKey] = []
        for job in jobs {
            guard case .refundQuery(let refund) = job.intent else { continue }
            let key = RefundQueryKey(channel: refund.channel, outTradeNo: refund.outTradeNo, refundNo: refund.refundNo)
            if seen.insert(key).inserted { keys.append(key) }
        }
        return keys
    }

    /// Stage 4 for refunds, with the refund queries' answers.
    mutating func answerRefunds(_ answers: [RefundQueryKey: RefundAnswer]) {
        for index in jobs.indices {
            let job = jobs[index]
            guard case .refundQuery(let refund) = job.intent else { continue }
            let attempt = job.claimed.attempt
            let answer = answers[RefundQueryKey(channel: refund.channel, outTradeNo: refund.outTradeNo, refundNo: refund.refundNo)]
            switch answer {
            case nil:
                jobs[index].intent = .finished(.dead(reason: .unknownChannel, error: "channel is not configured"))
            case .failure(let error) where error.isTransient:
                jobs[index].intent = .finished(rules.transient(attempt: attempt, reason: .queryUnavailable, error: error.description))
            case .failure(let error):
                jobs[index].intent = .finished(.dead(reason: .queryFailed, error: error.description))
            case .success(let result):
                switch RefundAgreement.check(refund, result) {
                case .confirms(let confirmed):
                    jobs[index].intent = .applyRefund(RefundItem(source: .callback, callbackID: job.claimed.id, evidence: confirmed))
                case .notYet(let reason):
                    jobs[index].intent = .finished(rules.transient(attempt: attempt, reason: reason,
                                                                   error: "the channel does not confirm the refund yet"))
                case .disagrees(let detail):
                    jobs[index].intent = .finished(.rejected(reason: .queryMismatch, error: detail))
                    jobs[index].conflictEvent = OrderEventRecord(
                        outTradeNo: refund.outTradeNo, callbackID: job.claimed.id, source: .callback, kind: .conflict,
                        fromStatus: orders[refund.outTradeNo]?.status, toStatus: nil, flagged: true, reason: .queryMismatch,
                        detail: detail, refundNo: refund.refundNo)
                }
            }
        }
    }

    /// Stage 4, with the channels' answers (a missing answer: no adapter for that channel).
    mutating func answer(_ answers: [QueryKey: QueryAnswer]) {
        for index in jobs.indices {
            let job = jobs[index]
            if case .query(let evidence) = job.intent {
                let answer = answers[QueryKey(channel: evidence.channel, outTradeNo: evidence.outTradeNo)]
                jobs[index].intent = interpret(answer, for: evidence, job: job)
                if case .finished(.rejected(.queryMismatch, let detail)) = jobs[index].intent {
                    jobs[index].conflictEvent = OrderEventRecord(
                        outTradeNo: evidence.outTradeNo, callbackID: job.claimed.id, source: .callback,
                        kind: .conflict, fromStatus: orders[evidence.outTradeNo]?.status, toStatus: nil, flagged: true,
                        reason: .queryMismatch, detail: detail ?? "")
                }
            }
            if let order = job.reconcileOrder,
               case .success(.found(let stated))? = answers[QueryKey(channel: order.channel, outTradeNo: order.outTradeNo)],
               stated.status.isFinal {
                jobs[index].reconcileItem = ApplyItem(source: .reconcile, callbackID: job.claimed.id, evidence: stated,
                                                      note: "asked the channel after a rejected callback")
            }
        }
    }

    private func interpret(_ answer: QueryAnswer?, for evidence: OrderEvidence, job: Job) -> Job.Intent {
        let attempt = job.claimed.attempt
        switch answer {
        case nil:
            return .finished(.dead(reason: .unknownChannel, error: "channel is not configured"))
        case .failure(let error) where error.isTransient:
            return .finished(rules.transient(attempt: attempt, reason: .queryUnavailable, error: error.description))
        case .failure(let error):
            // The callback is not at fault: dead, so an operator can replay it once fixed.
            return .finished(.dead(reason: .queryFailed, error: error.description))
        case .success(let result):
            switch QueryAgreement.check(evidence, result) {
            case .confirms(let confirmed):
                return .apply(ApplyItem(source: .callback, callbackID: job.claimed.id, evidence: confirmed))
            case .notYet(let reason):
                return .finished(rules.transient(attempt: attempt, reason: reason,
                                                 error: "the channel does not confirm the payment yet"))
            case .disagrees(let detail):
                return .finished(.rejected(reason: .queryMismatch, error: detail))
            case .nothingToApply:
                return .finished(.done)
            }
        }
    }

    /// Stage 5: what to write for the jobs whose leases `held` says this worker still holds.
    func commit(held: Set<Int64>) -> Commit {
        var commit = Commit(items: [], itemJobs: [], events: [])
        for (index, job) in jobs.enumerated() where held.contains(job.claimed.id) {
            if case .apply(let item) = job.intent {
                commit.items.append(item)
                commit.itemJobs.append(index)
            }
            if let item = job.reconcileItem {
                commit.items.append(item)
                commit.itemJobs.append(nil)
            }
            if case .applyRefund(let refund) = job.intent {
                commit.refunds.append(refund)
                commit.refundJobs.append(index)
            }
            if let event = job.conflictEvent { commit.events.append(event) }
        }
        return commit
    }

    /// Every job's finish, once the orders decided the applied items (`decisions`, one per
    /// item of `commit`; nil where the order does not exist).
    func finishes(_ commit: Commit, decisions: [OrderDecision?], refundDecisions: [RefundDecision?] = []) -> [QueueStore.Finish] {
        var outcomes = jobs.map { job -> AttemptOutcome? in
            if case .finished(let outcome) = job.intent { return outcome }
            return nil
        }
        for (position, index) in commit.itemJobs.enumerated() {
            guard let index else { continue }
            outcomes[index] = decisions[position].map(rules.applied) ?? rules.unknownOrder(attempt: jobs[index].claimed.attempt)
        }
        for (position, index) in commit.refundJobs.enumerated() {
            let decision = position < refundDecisions.count ? refundDecisions[position] : nil
            outcomes[index] = decision.map(rules.appliedRefund) ?? rules.unknownOrder(attempt: jobs[index].claimed.attempt)
        }
        return jobs.enumerated().map { index, job in
            // A job the fence refused keeps no outcome; finish's own fence logs it as lease_lost.
            QueueStore.Finish(job.claimed, startedAt: startedAt,
                              outcome: outcomes[index] ?? .released, outTradeNo: job.outTradeNo,
                              channelTradeNo: job.channelTradeNo)
        }
    }

    /// The plan of one job alone, to apply it by itself after its batch failed.
    func alone(_ index: Int) -> BatchPlan {
        var single = self
        single.jobs = [jobs[index]]
        return single
    }

    /// The plan of one job that failed to apply by itself: retried, with nothing that could
    /// fail again (no events, no parsed ids).
    func failedAlone(_ index: Int, error: String) -> BatchPlan {
        var single = alone(index)
        let attempt = single.jobs[0].claimed.attempt
        single.jobs[0].intent = .finished(rules.transient(attempt: attempt, reason: .applyFailed, error: error))
        single.jobs[0].conflictEvent = nil
        single.jobs[0].reconcileItem = nil
        single.jobs[0].unqueried = false
        single.jobs[0].outTradeNo = nil
        single.jobs[0].channelTradeNo = nil
        return single
    }
}
