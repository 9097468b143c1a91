import CallbackQueue
import Channels
import Foundation
import Logging
import Orders
import Postgres

/// The pipeline for one claimed batch, on the claiming thread's connection:
/// verify (across the cores) → orders → the channel's query API (all in flight together)
/// → one fenced transaction that applies the orders and finishes the callbacks.
final class BatchProcessor {
    let store: QueueStore
    let adapters: [String: AnyChannelAdapter]
    let rules: OutcomeRules
    let reconcileEverySeconds: Int
    let metrics: WorkerMetrics
    let logger: Logger

    init(store: QueueStore, adapters: [String: AnyChannelAdapter], rules: OutcomeRules, reconcileEverySeconds: Int,
         metrics: WorkerMetrics, logger: Logger) {
        self.store = store
        self.adapters = adapters
        self.rules = rules
        self.reconcileEverySeconds = reconcileEverySeconds
        self.metrics = metrics
        self.logger = logger
    }

    /// Where one callback stands in the pipeline.
    struct Job {
        enum Intent {
            /// The outcome is known; nothing to apply.
            case finished(AttemptOutcome)
            /// Ask the channel before applying.
            case query(OrderEvidence)
            /// Apply this evidence under lock; the decision gives the outcome.
            case apply(ApplyItem)
        }

        let claimed: ClaimedCallback
        let startedAt: Date
        var outTradeNo: String?
        var channelTradeNo: String?
        var intent: Intent
        /// A flagged event recorded with the outcome (merchant or query mismatch).
        var conflictEvent: OrderEventRecord?
        /// After a failed signature: the order whose state the channel is asked about.
        var reconcileOrder: OrderSnapshot?
        var reconcileItem: ApplyItem?
    }

    enum Verification: Sendable {
        case verified(PaymentNotification)
        case rejected(Rejection, claimedOutTradeNo: String?)
        case unknownChannel
    }

    /// Reasons after which a channel is asked about the order anyway: a misconfigured key
    /// or allowlist must not leave a paid order unpaid, and the answer alone can move it.
    static let reconcileAfter: Set<RejectionReason> = [.badSignature, .unknownKey, .decryptFailed, .ipNotAllowed]

    /// An order or trade number as it may be stored and indexed: channels use at most 64
    /// characters; a forger's 60 KB "order number" must not be able to fail the batch's
    /// write (an index entry has a size limit) and jam the queue.
    static func storable(_ number: String) -> String? {
        number.utf8.count <= 128 && number.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
            ? number : nil
    }

    /// Processes the batch; throws only when the database failed (the leases then run out
    /// and the callbacks are claimed again).
    func process(_ claimed: [ClaimedCallback], on connection: Connection) throws(PostgresError) {
        guard !claimed.isEmpty else { return }
        let startedAt = Date()

        // 1. Parse, allowlist, signature, decryption: CPU only, across the cores.
        let verifyClock = ContinuousClock.now
        let adapters = self.adapters
        let verifications = parallelMap(claimed) { callback -> Verification in
            guard let adapter = adapters[callback.callback.channel] else { return .unknownChannel }
            let raw = RawCallback(callback.callback)
            switch adapter.verifyResult(raw) {
            case .success(let notification): return .verified(notification)
            case .failure(let rejection): return .rejected(rejection, claimedOutTradeNo: adapter.unverifiedOutTradeNo(raw))
            }
        }
        metrics.stage("verify", since: verifyClock)

        var jobs: [Job] = []
        jobs.reserveCapacity(claimed.count)
        for (callback, verification) in zip(claimed, verifications) {
            switch verification {
            case .unknownChannel:
                jobs.append(Job(claimed: callback, startedAt: startedAt, intent: .finished(
                    .dead(reason: "unknown_channel", error: "channel is not configured"))))
            case .rejected(let rejection, let outTradeNo):
                jobs.append(Job(claimed: callback, startedAt: startedAt, outTradeNo: outTradeNo.flatMap(Self.storable),
                                intent: .finished(
                    .rejected(reason: rejection.reason.rawValue, error: rejection.description))))
            case .verified(let notification):
                jobs.append(Job(claimed: callback, startedAt: startedAt, outTradeNo: Self.storable(notification.outTradeNo),
                                channelTradeNo: notification.channelTradeNo.flatMap(Self.storable),
                                intent: .query(OrderEvidence(notification))))
            }
        }

        // 2. The orders, unlocked: unknown orders, mismatches and duplicates need no query.
        let ordersClock = ContinuousClock.now
        let orders = try OrderStore.fetch(jobs.compactMap(\.outTradeNo), on: connection)
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
                case .noChange, .transition:
                    break  // ask the channel
                }
            case .finished(.rejected(let reason, _)):
                guard let outTradeNo = job.outTradeNo, let order = orders[outTradeNo] else { continue }
                if reason == RejectionReason.merchantMismatch.rawValue {
                    jobs[index].conflictEvent = OrderEventRecord(
                        outTradeNo: outTradeNo, callbackID: job.claimed.id, source: .callback, kind: .conflict,
                        fromStatus: order.status, toStatus: nil, flagged: true,
                        detail: "merchant_mismatch: a genuine callback names another app or merchant")
                }
                if let parsed = RejectionReason(rawValue: reason), Self.reconcileAfter.contains(parsed),
                   order.status == .created {
                    reconcileCandidates.append(outTradeNo)
                }
            case .finished, .apply:
                break
            }
        }
        if !reconcileCandidates.isEmpty {
            let allowed = try OrderStore.claimReconciliation(reconcileCandidates, everySeconds: reconcileEverySeconds,
                                                             on: connection)
            var byNumber = Dictionary(allowed.map { ($0.outTradeNo, $0) }, uniquingKeysWith: { a, _ in a })
            for index in jobs.indices {
                guard let outTradeNo = jobs[index].outTradeNo, let order = byNumber.removeValue(forKey: outTradeNo)
                else { continue }
                jobs[index].reconcileOrder = order
            }
        }
        metrics.stage("orders", since: ordersClock)

        // 3. The channels' query APIs, each order asked once, all in flight together.
        let queryClock = ContinuousClock.now
        var questions: [QueryKey: AnyChannelAdapter] = [:]
        for job in jobs {
            if case .query(let evidence) = job.intent, let adapter = adapters[evidence.channel] {
                questions[QueryKey(channel: evidence.channel, outTradeNo: evidence.outTradeNo)] = adapter
            }
            if let order = job.reconcileOrder, let adapter = adapters[order.channel] {
                questions[QueryKey(channel: order.channel, outTradeNo: order.outTradeNo)] = adapter
            }
        }
        let answers = questions.isEmpty ? [:] : Self.ask(questions)
        if !questions.isEmpty { metrics.stage("query", since: queryClock) }

        for index in jobs.indices {
            let job = jobs[index]
            if case .query(let evidence) = job.intent {
                let key = QueryKey(channel: evidence.channel, outTradeNo: evidence.outTradeNo)
                jobs[index].intent = interpret(answers[key], for: evidence, job: job)
                if case .finished(.rejected(let reason, let detail)) = jobs[index].intent,
                   reason == ConflictReason.queryMismatch.rawValue {
                    jobs[index].conflictEvent = OrderEventRecord(
                        outTradeNo: evidence.outTradeNo, callbackID: job.claimed.id, source: .callback,
                        kind: .conflict, fromStatus: orders[evidence.outTradeNo]?.status, toStatus: nil, flagged: true,
                        detail: "query_mismatch: " + (detail ?? ""))
                }
            }
            if let order = job.reconcileOrder {
                let answer = answers[QueryKey(channel: order.channel, outTradeNo: order.outTradeNo)]
                metrics.reconciliation(channel: order.channel, answer: answer)
                if case .success(.found(let queried))? = answer, queried.status == .paid || queried.status == .closed {
                    jobs[index].reconcileItem = ApplyItem(
                        source: .reconcile, callbackID: job.claimed.id,
                        evidence: QueryAgreement.evidence(from: queried, channel: order.channel),
                        note: "asked the channel after a rejected callback")
                }
            }
        }

        // 4. One transaction: fence, orders, events, callback states.
        let applyClock = ContinuousClock.now
        do {
            try commit(jobs, on: connection)
        } catch let error where !error.isTransient && jobs.count > 1 {
            // One poisonous callback (say, a trade number another order already holds)
            // must not hold back the batch: apply them one by one.
            logger.error("batch apply failed; applying one by one", metadata: ["error": "\(error)"])
            for job in jobs {
                do {
                    try commit([job], on: connection)
                } catch let single where !single.isTransient {
                    metrics.databaseError()
                    logger.error("apply failed", metadata: [
                        "callback_id": "\(job.claimed.id)", "channel": "\(job.claimed.callback.channel)",
                        "error": "\(single)",
                    ])
                    var failed = job
                    failed.intent = .finished(rules.transient(attempt: job.claimed.attempt, reason: "apply_failed",
                                                             error: single.description))
                    // Finish it with nothing that could fail again: no events, no parsed ids.
                    failed.conflictEvent = nil
                    failed.reconcileItem = nil
                    failed.outTradeNo = nil
                    failed.channelTradeNo = nil
                    try commit([failed], on: connection)
                }
            }
        }
        metrics.stage("apply", since: applyClock)
    }

    struct QueryKey: Hashable, Sendable {
        let channel: String
        let outTradeNo: String
    }

    /// Asks every question at once. Signing the requests and verifying the answers is CPU
    /// work and stays on this worker thread (a lower priority than the receiver in
    /// `payhook run`); only the sends run as tasks, all in flight together.
    static func ask(_ questions: [QueryKey: AnyChannelAdapter]) -> [QueryKey: Result<OrderQueryResult, QueryError>] {
        let list = Array(questions)
        let requests = list.map { key, adapter in
            Result { () throws(QueryError) -> ChannelRequest in try adapter.queryRequest(outTradeNo: key.outTradeNo, now: Date()) }
        }
        let responses = concurrentlyAwait(list.count) { index -> Result<ChannelResponse, QueryError> in
            let adapter = list[index].value
            guard case .success(let request) = requests[index] else { return .failure(QueryError.transient(.invalidRequest)) }
            do throws(QueryError) {
                return .success(try await adapter.queryTransport.send(request, timeout: adapter.queryTimeout))
            } catch {
                return .failure(error)
            }
        }
        var answers: [QueryKey: Result<OrderQueryResult, QueryError>] = [:]
        for (index, (key, adapter)) in list.enumerated() {
            answers[key] = requests[index].flatMap { _ in responses[index] }.flatMap { response in
                Result { () throws(QueryError) -> OrderQueryResult in
                    try adapter.queryResult(response, outTradeNo: key.outTradeNo, now: Date())
                }
            }
        }
        return answers
    }

    func interpret(_ answer: Result<OrderQueryResult, QueryError>?, for evidence: OrderEvidence, job: Job) -> Job.Intent {
        let attempt = job.claimed.attempt
        switch answer {
        case nil:
            return .finished(.dead(reason: "unknown_channel", error: "channel is not configured"))
        case .failure(let error) where error.isTransient:
            return .finished(rules.transient(attempt: attempt, reason: "query_unavailable", error: error.description))
        case .failure(let error):
            // The callback is not at fault: dead, so an operator can replay it once fixed.
            return .finished(.dead(reason: "query_failed", error: error.description))
        case .success(let result):
            switch QueryAgreement.check(evidence, result) {
            case .confirms(let confirmed):
                return .apply(ApplyItem(source: .callback, callbackID: job.claimed.id, evidence: confirmed))
            case .notYet(let reason):
                return .finished(rules.transient(attempt: attempt, reason: reason,
                                                 error: "the channel does not confirm the payment yet"))
            case .disagrees(let detail):
                return .finished(.rejected(reason: ConflictReason.queryMismatch.rawValue, error: detail))
            case .nothingToApply:
                return .finished(.done)
            }
        }
    }

    /// Applies and finishes `jobs` in one transaction, only for callbacks this worker
    /// still holds (the fence: `locked_by` and the attempt number, row-locked until commit).
    func commit(_ jobs: [Job], on connection: Connection) throws(PostgresError) {
        let (finishes, refused, plan, items) = try connection.transaction { connection throws(PostgresError) in
            let held = try fence(jobs, on: connection)
            var items: [ApplyItem] = []
            var itemJob: [Int] = []  // the job index of each callback item
            var events: [OrderEventRecord] = []
            for (index, job) in jobs.enumerated() where held.contains(job.claimed.id) {
                if case .apply(let item) = job.intent {
                    items.append(item)
                    itemJob.append(index)
                }
                if let item = job.reconcileItem { items.append(item); itemJob.append(-1) }
                if let event = job.conflictEvent { events.append(event) }
            }
            let plan = try OrderStore.apply(items, on: connection)
            if !events.isEmpty { try OrderStore.insert(events, on: connection) }

            var outcomes = jobs.map { job -> AttemptOutcome? in
                if case .finished(let outcome) = job.intent { return outcome }
                return nil
            }
            for (position, index) in itemJob.enumerated() where index >= 0 {
                let job = jobs[index]
                outcomes[index] = plan.decisions[position].map(rules.applied)
                    ?? rules.unknownOrder(attempt: job.claimed.attempt)
            }
            let finishes = jobs.enumerated().map { index, job in
                QueueStore.Finish(callbackID: job.claimed.id, attempt: job.claimed.attempt, startedAt: job.startedAt,
                                  outcome: outcomes[index] ?? .released, outTradeNo: job.outTradeNo,
                                  channelTradeNo: job.channelTradeNo)
            }
            return (finishes, try store.finish(finishes, on: connection), plan, items)
        }
        record(jobs: jobs, finishes: finishes, refused: refused, plan: plan, items: items)
    }

    private func fence(_ jobs: [Job], on connection: Connection) throws(PostgresError) -> Set<Int64> {
        let result = try connection.query(prepared: "payhook_worker_fence", """
            SELECT callback_id, attempts FROM callback_jobs
            WHERE callback_id = ANY($1::bigint[]) AND locked_by = $2
            FOR UPDATE
            """, [.int64Array(jobs.map(\.claimed.id)), .text(store.workerID)])
        var attempts: [Int64: Int32] = [:]
        for row in result.rows { attempts[try row.decode(0)] = try row.decode(1) }
        return Set(jobs.filter { attempts[$0.claimed.id] == $0.claimed.attempt }.map(\.claimed.id))
    }

    private func record(jobs: [Job], finishes: [QueueStore.Finish], refused: Set<Int64>, plan: OrderBatchPlan,
                        items: [ApplyItem]) {
        for (job, finish) in zip(jobs, finishes) {
            let channel = job.claimed.callback.channel
            if refused.contains(job.claimed.id) {
                metrics.processed(channel: channel, outcome: "lease_lost", reason: nil)
                logger.warning("lease lost; another worker owns the callback now", metadata: [
                    "callback_id": "\(job.claimed.id)", "channel": "\(channel)",
                ])
                continue
            }
            let reason: String? = switch finish.outcome {
            case .rejected(let reason, _): reason
            case .retry(_, let reason, _), .dead(let reason, _): reason
            case .done, .released: nil
            }
            metrics.processed(channel: channel, outcome: finish.outcome.label, reason: reason)
        }
        for (decision, item) in zip(plan.decisions, items) {
            guard case .conflict(let reason, _)? = decision else { continue }
            metrics.conflict(channel: item.evidence.channel, reason: reason.rawValue)
            logger.error("order conflict recorded, order not changed", metadata: [
                "callback_id": "\(item.callbackID.map(String.init) ?? "-")", "channel": "\(item.evidence.channel)",
                "out_trade_no": "\(item.evidence.outTradeNo)", "reason": "\(reason.rawValue)",
            ])
        }
        for job in jobs where job.conflictEvent != nil && !refused.contains(job.claimed.id) {
            let reason = job.conflictEvent?.detail?.split(separator: ":").first.map(String.init) ?? "conflict"
            metrics.conflict(channel: job.claimed.callback.channel, reason: reason)
            logger.error("order conflict recorded, order not changed", metadata: [
                "callback_id": "\(job.claimed.id)", "channel": "\(job.claimed.callback.channel)",
                "out_trade_no": "\(job.outTradeNo ?? "-")", "reason": "\(reason)",
            ])
        }
    }
}

extension RawCallback {
    /// The stored callback as the adapters read it.
    init(_ stored: NewCallback) {
        self.init(
            kind: stored.kind == .return ? .return : .notify, method: stored.method, path: stored.path,
            query: stored.query, headers: stored.headers.map { Channels.HeaderField(name: $0.name, value: $0.value) },
            body: stored.body, sourceIP: stored.sourceIP ?? stored.peerIP ?? "", receivedAt: stored.receivedAt)
    }
}
