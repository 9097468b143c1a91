import CallbackQueue
import ChannelClients
import Channels
import Foundation
import Logging
import Orders
import PayhookCore
import Postgres

/// The I/O around a `BatchPlan`, on the claiming thread's connection: verify (across the
/// cores) → read the orders → the channels' query APIs (all in flight together) → one
/// fenced transaction that applies the orders and finishes the callbacks.
final class BatchProcessor {
    let store: QueueStore
    let clients: [String: ChannelClient]
    let rules: OutcomeRules
    let reconcileEverySeconds: Int
    /// The `cross_check: when_unverified` channels and the identity their notifies must name.
    let trusted: [String: MerchantIdentity]
    let metrics: WorkerMetrics
    let logger: Logger

    init(store: QueueStore, clients: [String: ChannelClient], rules: OutcomeRules, reconcileEverySeconds: Int,
         crossCheck: [String: CrossCheck] = [:], metrics: WorkerMetrics, logger: Logger) {
        self.store = store
        self.clients = clients
        self.rules = rules
        self.reconcileEverySeconds = reconcileEverySeconds
        var trusted: [String: MerchantIdentity] = [:]
        for (channel, policy) in crossCheck where policy == .whenUnverified {
            if let adapter = clients[channel]?.adapter { trusted[channel] = adapter.merchant }
        }
        self.trusted = trusted
        self.metrics = metrics
        self.logger = logger
    }

    /// Processes the batch; throws only when the database failed (the leases then run out
    /// and the callbacks are claimed again).
    func process(_ claimed: [ClaimedCallback], on connection: Connection) throws(PostgresError) {
        guard !claimed.isEmpty else { return }
        let startedAt = Date()

        // 1. Parse, allowlist, signature, decryption: CPU only, across the cores.
        let verifyClock = ContinuousClock.now
        let verifications = Self.verify(claimed, clients: clients)
        metrics.stage("verify", since: verifyClock)
        for (callback, verification) in zip(claimed, verifications) {
            guard case .corrupt(let problem) = verification else { continue }
            metrics.corruptRow(channel: callback.channel)
            logger.error("stored callback does not read back; sent to the dead letters", metadata: [
                "callback_id": "\(callback.id)", "channel": "\(callback.channel)", "error": "\(problem)",
            ])
        }
        var plan = BatchPlan(claimed: claimed, verifications: verifications, rules: rules, startedAt: startedAt,
                             trusted: trusted)

        // 2. The orders, unlocked; and the right to reconcile after a rejected signature.
        let ordersClock = ContinuousClock.now
        let candidates = plan.readOrders(try OrderStore.fetch(plan.orderNumbers, on: connection))
        if !candidates.isEmpty {
            plan.reconcile(try OrderStore.claimReconciliation(candidates, everySeconds: reconcileEverySeconds,
                                                              on: connection))
        }
        metrics.stage("orders", since: ordersClock)

        // 3. The channels' query APIs, each order asked once, all in flight together.
        let questions = plan.questions
        if !questions.isEmpty {
            let queryClock = ContinuousClock.now
            let answers = QueryRound.ask(questions, clients: clients)
            metrics.stage("query", since: queryClock)
            for job in plan.jobs {
                guard let order = job.reconcileOrder else { continue }
                metrics.reconciliation(channel: order.channel,
                                       answer: answers[QueryKey(channel: order.channel, outTradeNo: order.outTradeNo)])
            }
            plan.answer(answers)
        }
        let refundQuestions = plan.refundQuestions
        if !refundQuestions.isEmpty {
            let queryClock = ContinuousClock.now
            plan.answerRefunds(QueryRound.askRefunds(refundQuestions, clients: clients))
            metrics.stage("query", since: queryClock)
        }

        // 4. One transaction: fence, orders, events, callback states.
        let applyClock = ContinuousClock.now
        do {
            try commit(plan, on: connection)
        } catch let error where !error.isTransient && plan.jobs.count > 1 {
            // One poisonous callback (say, a trade number another order already holds)
            // must not hold back the batch: apply them one by one.
            logger.error("batch apply failed; applying one by one", metadata: ["error": "\(error)"])
            for index in plan.jobs.indices {
                do {
                    try commit(plan.alone(index), on: connection)
                } catch let single where !single.isTransient {
                    let job = plan.jobs[index]
                    metrics.databaseError()
                    logger.error("apply failed", metadata: [
                        "callback_id": "\(job.claimed.id)", "channel": "\(job.claimed.channel)", "error": "\(single)",
                    ])
                    try commit(plan.failedAlone(index, error: single.description), on: connection)
                }
            }
        }
        metrics.stage("apply", since: applyClock)
    }

    /// The verify stage: each stored callback through its channel's adapter.
    static func verify(_ claimed: [ClaimedCallback], clients: [String: ChannelClient]) -> [Verification] {
        parallelMap(claimed) { callback -> Verification in
            guard let adapter = clients[callback.channel]?.adapter else { return .unknownChannel }
            switch callback.stored {
            case .failure(let problem):
                return .corrupt(problem)
            case .success(let raw):
                switch adapter.verifyResult(raw) {
                case .success(let notification): return .verified(notification)
                case .failure(let rejection):
                    return .rejected(rejection, claimedOutTradeNo: adapter.unverifiedOutTradeNo(raw))
                }
            }
        }
    }

    /// Applies and finishes the plan in one transaction, only for callbacks this worker
    /// still holds (the fence, row-locked until commit), in two round trips: BEGIN, the
    /// fence and the orders locked (with their refunds) in one pipeline; the decision here;
    /// then the writes, the finishes and COMMIT in another.
    func commit(_ plan: BatchPlan, on connection: Connection) throws(PostgresError) {
        let claims = plan.jobs.map(\.claimed)
        // The orders every claim could write: locking one whose lease turns out lost costs
        // nothing but the lock, and lets the fence and the locks share a round trip.
        let possible = plan.commit(held: Set(claims.map(\.id)))
        let lockStatement = OrderStore.readStatement(possible.items.map(\.evidence.outTradeNo)
                                                     + possible.refunds.map(\.evidence.outTradeNo), lock: true)
        let refundOrders = Set(possible.refunds.map(\.evidence.outTradeNo)).sorted()
        var first = [SQLStatement("BEGIN"), store.holdStatement(claims)]
        if let lockStatement { first.append(lockStatement) }
        // Read under the orders' locks: every refund write locks its order first.
        if !refundOrders.isEmpty { first.append(RefundStore.recordsStatement(refundOrders)) }

        let commit: BatchPlan.Commit, decided: OrderBatchPlan, finishes: [QueueStore.Finish], refused: Set<Int64>
        do {
            let read = try connection.pipeline(first)
            commit = plan.commit(held: try store.held(claims, read[1]))
            let orders = lockStatement == nil ? [:] : try OrderStore.orders(read[2])
            let known = refundOrders.isEmpty ? [] : try RefundStore.records(read[read.count - 1])
            decided = OrderBatchPlan(items: commit.items, refunds: commit.refunds, orders: orders,
                                     knownRefunds: Dictionary(known.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first }),
                                     now: Date())
            finishes = plan.finishes(commit, decisions: decided.decisions, refundDecisions: decided.refundDecisions)
            var second = OrderStore.writeStatements(decided)
            if !commit.events.isEmpty { second.append(OrderStore.insertStatement(commit.events)) }
            second.append(store.finishStatement(finishes))
            second.append(SQLStatement("COMMIT"))
            let written = try connection.pipeline(second)
            refused = try store.refused(finishes, written[written.count - 2])
        } catch {
            if connection.isConnected { _ = try? connection.query("ROLLBACK") }  // the original error matters more
            throw error
        }
        record(plan, commit: commit, decisions: decided.decisions, finishes: finishes, refused: refused)
        for (decision, item) in zip(decided.refundDecisions, commit.refunds) {
            guard case .conflict(let reason, _)? = decision else { continue }
            conflictRecorded(channel: item.evidence.channel, outTradeNo: item.evidence.outTradeNo, reason: reason,
                             callbackID: item.callbackID)
        }
    }

    private func record(_ plan: BatchPlan, commit: BatchPlan.Commit, decisions: [OrderDecision?],
                        finishes: [QueueStore.Finish], refused: Set<Int64>) {
        for (job, finish) in zip(plan.jobs, finishes) {
            if refused.contains(job.claimed.id) {
                metrics.processed(channel: job.claimed.channel, outcome: "lease_lost", reason: nil)
                logger.warning("lease lost; another worker owns the callback now", metadata: [
                    "callback_id": "\(job.claimed.id)", "channel": "\(job.claimed.channel)",
                ])
                continue
            }
            metrics.processed(channel: job.claimed.channel, outcome: finish.outcome.label, reason: finish.outcome.reason)
        }
        for (position, index) in commit.itemJobs.enumerated() {
            guard let index, plan.jobs[index].unqueried, case .transition? = decisions[position] else { continue }
            metrics.unqueried(channel: plan.jobs[index].claimed.channel)
        }
        for (decision, item) in zip(decisions, commit.items) {
            guard case .conflict(let reason, _)? = decision else { continue }
            conflictRecorded(channel: item.evidence.channel, outTradeNo: item.evidence.outTradeNo, reason: reason,
                             callbackID: item.callbackID)
        }
        for job in plan.jobs where !refused.contains(job.claimed.id) {
            guard let event = job.conflictEvent, let reason = event.reason else { continue }
            conflictRecorded(channel: job.claimed.channel, outTradeNo: event.outTradeNo, reason: reason,
                             callbackID: job.claimed.id)
        }
    }

    private func conflictRecorded(channel: String, outTradeNo: String, reason: ReasonCode, callbackID: Int64?) {
        metrics.conflict(channel: channel, reason: reason)
        logger.error("order conflict recorded, order not changed", metadata: [
            "callback_id": "\(callbackID.map(String.init) ?? "-")", "channel": "\(channel)",
            "out_trade_no": "\(outTradeNo)", "reason": "\(reason)",
        ])
    }
}

/// The channels' query APIs for a batch of questions, on a worker thread. Signing the
/// requests and verifying the answers is CPU work and stays on this thread (a lower
/// priority than the receiver in `payhook run`); only the sends run as tasks, all in
/// flight together.
enum QueryRound {
    static func ask(_ questions: [QueryKey], clients: [String: ChannelClient]) -> [QueryKey: QueryAnswer] {
        round(questions, clients: clients, channel: \.channel,
              request: { key, client throws(QueryError) in try client.queryRequest(outTradeNo: key.outTradeNo) },
              result: { key, client, response throws(QueryError) in
                  try client.queryResult(response, outTradeNo: key.outTradeNo)
              })
    }

    /// The refund queries: the notify path asks by the refund's numbers alone (amounts
    /// matter only to the points reverse).
    static func askRefunds(_ questions: [RefundQueryKey], clients: [String: ChannelClient]) -> [RefundQueryKey: RefundAnswer] {
        func refund(_ key: RefundQueryKey) -> ChannelRefundRequest {
            ChannelRefundRequest(outTradeNo: key.outTradeNo, refundNo: key.refundNo, amountMinor: 0, orderAmountMinor: 0)
        }
        return round(questions, clients: clients, channel: \.channel,
                     request: { key, client throws(QueryError) in
                         try client.adapter.refundQueryRequest(refund(key), now: Date())
                     },
                     result: { key, client, response throws(QueryError) in
                         try client.adapter.refundQueryResult(response, refund: refund(key), now: Date())
                     })
    }

    /// One round: each request built on this thread, the sends in flight together, each
    /// answer read on this thread. A question whose channel has no client gets no answer.
    private static func round<Key: Hashable & Sendable, Answer>(
        _ questions: [Key], clients: [String: ChannelClient], channel: (Key) -> String,
        request: (Key, ChannelClient) throws(QueryError) -> ChannelRequest,
        result: (Key, ChannelClient, ChannelResponse) throws(QueryError) -> Answer
    ) -> [Key: Result<Answer, QueryError>] {
        let asked = questions.compactMap { key in clients[channel(key)].map { (key, $0) } }
        let requests = asked.map { key, client in
            Result { () throws(QueryError) -> ChannelRequest in try request(key, client) }
        }
        let responses = concurrentlyAwait(asked.count) { index -> Result<ChannelResponse, QueryError> in
            guard case .success(let request) = requests[index] else { return .failure(.transient(.invalidRequest)) }
            do throws(QueryError) {
                return .success(try await asked[index].1.send(request))
            } catch {
                return .failure(error)
            }
        }
        var answers: [Key: Result<Answer, QueryError>] = [:]
        for (index, (key, client)) in asked.enumerated() {
            answers[key] = requests[index].flatMap { _ in responses[index] }.flatMap { response in
                Result { () throws(QueryError) -> Answer in try result(key, client, response) }
            }
        }
        return answers
    }
}
