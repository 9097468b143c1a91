public import Foundation
public import Postgres

/// One claimed delivery: the event's exact body, for one endpoint, leased to this worker.
public struct ClaimedDelivery: Sendable, Equatable {
    public let id: Int64
    /// The attempt number this claim is (the fence's token).
    public let attempt: Int32
    public let eventID: String
    public let endpointID: String
    public let body: [UInt8]
    /// When the event's change committed.
    public let committedAt: Date
}

/// How one attempt ended.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered
    /// Failed; try again after the wait.
    case retry(afterSeconds: Double)
    /// Failed, and the schedule is spent.
    case dead
    /// `410 Gone`: the endpoint is disabled; the delivery waits, pending, for it to be enabled.
    case gone
    /// Not sent (shutdown): back to the queue, the attempt given back.
    case released

    var nextState: String {
        switch self {
        case .delivered: "delivered"
        case .retry, .gone, .released: "pending"
        case .dead: "dead"
        }
    }

    var label: String {
        switch self {
        case .delivered: "delivered"
        case .retry: "retry"
        case .dead: "dead"
        case .gone: "gone"
        case .released: "released"
        }
    }

    var delayMilliseconds: Int64? {
        switch self {
        case .retry(let seconds): Int64((max(seconds, 0) * 1000).rounded())
        case .gone, .released: 0
        case .delivered, .dead: nil
        }
    }
}

/// The webhook queue's statements, on a connection the calling thread owns. Claims use
/// `SKIP LOCKED` and a lease; a finish is fenced by the lease of that very attempt, as the
/// callbacks' are (`QueueStore`), and every attempt is logged, `lease_lost` where the fence
/// refused it.
public struct DeliveryStore: Sendable {
    public let workerID: String
    public let leaseSeconds: Double

    public init(workerID: String, leaseSeconds: Double) {
        self.workerID = workerID
        self.leaseSeconds = leaseSeconds
    }

    /// Makes `webhook_endpoints` match the configuration: new endpoints added, URLs and kinds
    /// updated, endpoints no longer configured marked inactive (no new deliveries).
    public static func syncEndpoints(_ endpoints: [WebhookEndpoint], on connection: Connection) throws(PostgresError) {
        try connection.transaction { connection throws(PostgresError) in
            try connection.query("""
                INSERT INTO webhook_endpoints (id, url, kinds)
                SELECT id, url, string_to_array(kinds, ',') FROM unnest($1::text[], $2::text[], $3::text[]) AS e(id, url, kinds)
                ON CONFLICT (id) DO UPDATE
                SET url = excluded.url, kinds = excluded.kinds, active = true, updated_at = now()
                """, [.textArray(endpoints.map(\.id)), .textArray(endpoints.map(\.url.absoluteString)),
                      .textArray(endpoints.map { $0.kinds.joined(separator: ",") })])
            try connection.query("""
                UPDATE webhook_endpoints SET active = false, updated_at = now()
                WHERE active AND NOT id = ANY($1::text[])
                """, [.textArray(endpoints.map(\.id))])
        }
    }

    /// The endpoints disabled now, by id, with why.
    public static func disabledEndpoints(on connection: Connection) throws(PostgresError) -> [String: String] {
        var disabled: [String: String] = [:]
        for row in try connection.query("SELECT id, disabled_reason FROM webhook_endpoints WHERE disabled_at IS NOT NULL").rows {
            disabled[try row.decode(0)] = try row.decode(1)
        }
        return disabled
    }

    /// Claims due deliveries (and those whose lease expired), at most `room` for each endpoint.
    public func claim(room: [String: Int], on connection: Connection) throws(PostgresError) -> [ClaimedDelivery] {
        guard let statement = claimStatement(room: room) else { return [] }
        return try Self.claimed(try connection.query(statement))
    }

    /// The claim as a statement; nil when no endpoint has room.
    func claimStatement(room: [String: Int]) -> SQLStatement? {
        let endpoints = room.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        guard !endpoints.isEmpty else { return nil }
        return SQLStatement(prepared: "payhook_deliveries_claim", Self.claimSQL, [
            .textArray(endpoints.map(\.key)), .int32Array(endpoints.map { Int32($0.value) }), .text(workerID),
            .int64(Int64((leaseSeconds * 1000).rounded())),
        ])
    }

    static func claimed(_ result: PostgresResult) throws(PostgresError) -> [ClaimedDelivery] {
        try result.rows.map { row throws(PostgresError) in
            let body: String = try row.decode(4)
            return ClaimedDelivery(id: try row.decode(0), attempt: try row.decode(1), eventID: try row.decode(2),
                                   endpointID: try row.decode(3), body: Array(body.utf8), committedAt: try row.decode(5))
        }
    }

    /// One finished attempt.
    public struct Finish: Sendable, Equatable {
        public var delivery: ClaimedDelivery
        public var startedAt: Date
        public var outcome: DeliveryOutcome
        public var statusCode: Int?
        public var latencyMilliseconds: Int?
        /// The start of the answer's body (at most 512 bytes), never the request or a secret.
        public var responseExcerpt: String?
        public var error: String?

        public init(delivery: ClaimedDelivery, startedAt: Date, outcome: DeliveryOutcome, statusCode: Int? = nil,
                    latencyMilliseconds: Int? = nil, responseExcerpt: String? = nil, error: String? = nil) {
            self.delivery = delivery
            self.startedAt = startedAt
            self.outcome = outcome
            self.statusCode = statusCode
            self.latencyMilliseconds = latencyMilliseconds
            self.responseExcerpt = responseExcerpt
            self.error = error
        }
    }

    public struct FinishResult: Sendable, Equatable {
        /// Deliveries whose lease this worker no longer held: nothing written but the attempt.
        public var refused: Set<Int64>
        /// Endpoints this finish disabled, with why (`gone`, `failing`).
        public var disabled: [String: String]
    }

    /// Finishes these attempts and claims again, in one round trip and one transaction: a
    /// delivery thread's turn. The finish writes the outcomes, fenced by each attempt's lease,
    /// and updates each endpoint's health (a success clears `failing_since`; a 410, or failing
    /// past `disableAfterFailingSeconds`, disables it). The claim runs after it, so the room
    /// the finish frees is claimed at once; either both commit or neither does.
    public func finishAndClaim(_ finishes: [Finish], disableAfterFailingSeconds: Int64, room: [String: Int],
                               on connection: Connection) throws(PostgresError) -> (FinishResult, [ClaimedDelivery]) {
        guard !finishes.isEmpty else { return (FinishResult(refused: [], disabled: [:]), try claim(room: room, on: connection)) }
        let finish = finishStatement(finishes, disableAfterFailingSeconds: disableAfterFailingSeconds)
        guard let claim = claimStatement(room: room) else {
            return (try Self.finished(finishes, try connection.query(finish)), [])
        }
        let results = try connection.pipeline([finish, claim])
        return (try Self.finished(finishes, results[0]), try Self.claimed(results[1]))
    }

    func finishStatement(_ finishes: [Finish], disableAfterFailingSeconds: Int64) -> SQLStatement {
        SQLStatement(prepared: "payhook_deliveries_finish", Self.finishSQL, [
            .int64Array(finishes.map(\.delivery.id)), .int32Array(finishes.map(\.delivery.attempt)),
            .textArray(finishes.map(\.outcome.nextState)), .textArray(finishes.map(\.outcome.label)),
            .int64Array(finishes.map(\.outcome.delayMilliseconds)),
            .int32Array(finishes.map { $0.statusCode.map(Int32.init) }),
            .int32Array(finishes.map { $0.latencyMilliseconds.map { Int32(clamping: $0) } }),
            .textArray(finishes.map(\.responseExcerpt)), .textArray(finishes.map(\.error)),
            .timestamptzArray(finishes.map(\.startedAt)), .text(workerID), .int64(disableAfterFailingSeconds),
        ])
    }

    static func finished(_ finishes: [Finish], _ result: PostgresResult) throws(PostgresError) -> FinishResult {
        var finished = Set<Int64>()
        var disabled: [String: String] = [:]
        for row in result.rows {
            let what: String = try row.decode(0)
            if what == "finished" {
                finished.insert(Int64(try row.decode(1, as: String.self)) ?? -1)
            } else {
                disabled[try row.decode(1)] = try row.decode(2)
            }
        }
        return FinishResult(refused: Set(finishes.map(\.delivery.id)).subtracting(finished), disabled: disabled)
    }

    static let claimSQL = """
        WITH room AS (
            SELECT * FROM unnest($1::text[], $2::int[]) AS room(endpoint_id, slots)
        ), expired AS (
            SELECT d.id FROM webhook_deliveries AS d JOIN room ON room.endpoint_id = d.endpoint_id
            WHERE d.state = 'processing' AND d.locked_until < now()
            ORDER BY d.locked_until
            LIMIT (SELECT sum(slots) FROM room)
            FOR UPDATE OF d SKIP LOCKED
        ), due AS (
            SELECT picked.id FROM room
            CROSS JOIN LATERAL (
                SELECT d.id FROM webhook_deliveries AS d
                WHERE d.state = 'pending' AND d.endpoint_id = room.endpoint_id AND d.next_attempt_at <= now()
                ORDER BY d.next_attempt_at
                LIMIT room.slots
                FOR UPDATE SKIP LOCKED
            ) AS picked
        ), claimed AS (
            UPDATE webhook_deliveries AS d
            SET state = 'processing', locked_by = $3, locked_until = now() + $4 * interval '1 millisecond',
                attempts = d.attempts + 1, updated_at = now()
            WHERE d.id IN (SELECT id FROM expired UNION SELECT id FROM due)
            RETURNING d.id, d.attempts, d.event_id, d.endpoint_id
        )
        SELECT claimed.id, claimed.attempts, claimed.event_id, claimed.endpoint_id, o.payload, o.created_at
        FROM claimed JOIN order_outbox AS o ON o.event_id = claimed.event_id
        ORDER BY claimed.id
        """

    static let finishSQL = """
        WITH input AS (
            SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::int[], $7::int[],
                                 $8::text[], $9::text[], $10::timestamptz[])
                AS input(id, attempt, next_state, outcome, delay_ms, status_code, latency_ms, excerpt, error,
                         started_at)
        ), finished AS (
            UPDATE webhook_deliveries AS d
            SET state = input.next_state,
                next_attempt_at = CASE WHEN input.delay_ms IS NULL THEN d.next_attempt_at
                                       ELSE now() + input.delay_ms * interval '1 millisecond' END,
                attempts = d.attempts - CASE WHEN input.outcome = 'released' THEN 1 ELSE 0 END,
                locked_by = NULL, locked_until = NULL,
                last_status = coalesce(input.status_code, CASE WHEN input.outcome = 'released' THEN d.last_status END),
                last_error = CASE WHEN input.outcome = 'released' THEN d.last_error ELSE input.error END,
                delivered_at = CASE WHEN input.next_state = 'delivered' THEN now() END,
                updated_at = now()
            FROM input
            WHERE d.id = input.id AND d.locked_by = $11 AND d.attempts = input.attempt
            RETURNING d.id, d.endpoint_id, input.outcome
        ), logged AS (
            INSERT INTO webhook_attempts
                (delivery_id, attempt, worker, started_at, outcome, status_code, latency_ms, response_excerpt, error)
            SELECT input.id, input.attempt, $11, input.started_at,
                   CASE WHEN finished.id IS NULL THEN 'lease_lost' ELSE input.outcome END,
                   input.status_code, input.latency_ms, input.excerpt, input.error
            FROM input LEFT JOIN finished ON finished.id = input.id
        ), health AS (
            SELECT endpoint_id, bool_or(outcome = 'delivered') AS succeeded, bool_or(outcome = 'gone') AS gone,
                   bool_or(outcome IN ('retry', 'dead')) AS failed
            FROM finished GROUP BY endpoint_id
        ), endpoints AS (
            UPDATE webhook_endpoints AS e
            SET failing_since = CASE WHEN health.succeeded THEN NULL
                                     WHEN health.failed THEN coalesce(e.failing_since, now())
                                     ELSE e.failing_since END,
                disabled_reason = CASE WHEN e.disabled_at IS NOT NULL THEN e.disabled_reason
                                       WHEN health.gone THEN 'gone'
                                       WHEN NOT health.succeeded AND health.failed
                                            AND e.failing_since < now() - $12 * interval '1 second' THEN 'failing'
                                  END,
                disabled_at = CASE WHEN e.disabled_at IS NOT NULL THEN e.disabled_at
                                   WHEN health.gone THEN now()
                                   WHEN NOT health.succeeded AND health.failed
                                        AND e.failing_since < now() - $12 * interval '1 second' THEN now()
                              END,
                updated_at = now()
            FROM health
            WHERE e.id = health.endpoint_id
              -- Written only when it changes: in the steady state no finish touches the row,
              -- so finishes of one endpoint on many threads do not queue on its lock.
              AND (health.succeeded AND e.failing_since IS NOT NULL
                   OR NOT health.succeeded AND health.failed AND e.failing_since IS NULL
                   OR e.disabled_at IS NULL AND (health.gone OR NOT health.succeeded AND health.failed
                       AND e.failing_since < now() - $12 * interval '1 second'))
            -- now() is this transaction's start: an endpoint disabled before it has an earlier time.
            RETURNING e.id, e.disabled_at = now() AS newly, e.disabled_reason
        )
        SELECT 'finished', id::text, NULL::text FROM finished
        UNION ALL
        SELECT 'disabled', id, disabled_reason FROM endpoints WHERE newly
        """
}

extension DeliveryStore {
    /// Puts these events' deliveries (every endpoint, delivered or dead) back in the queue
    /// as new attempts with the same event id, so a receiver that deduplicates stays
    /// correct; deliveries in flight are left alone. Returns how many were queued.
    @discardableResult
    public static func replay(eventIDs: [String], on connection: Connection) throws(PostgresError) -> Int {
        try connection.query("""
            WITH replayed AS (
                UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
                WHERE event_id = ANY($1::text[]) AND state <> 'processing'
                RETURNING id
            )
            SELECT count(*), pg_notify('\(WebhookSchema.notifyChannel)', '') FROM replayed
            """, [.textArray(eventIDs)])[0].decode(0, as: Int.self)
    }

    /// The same for one endpoint's deliveries of events committed since `since`, making
    /// the deliveries it lacks (events it did not exist for, or was inactive for).
    @discardableResult
    public static func replay(endpointID: String, since: Date, on connection: Connection) throws(PostgresError) -> Int {
        try connection.query("""
            WITH endpoint AS (
                SELECT id, kinds FROM webhook_endpoints WHERE id = $1
            ), missing AS (
                INSERT INTO webhook_deliveries (event_id, endpoint_id)
                SELECT o.event_id, endpoint.id FROM order_outbox AS o, endpoint
                WHERE o.created_at >= $2 AND o.kind = ANY (endpoint.kinds)
                ON CONFLICT (event_id, endpoint_id) DO NOTHING
                RETURNING id
            ), replayed AS (
                UPDATE webhook_deliveries AS d
                SET state = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
                FROM order_outbox AS o
                WHERE d.endpoint_id = $1 AND d.state <> 'processing' AND o.event_id = d.event_id AND o.created_at >= $2
                RETURNING d.id
            )
            SELECT (SELECT count(*) FROM missing) + (SELECT count(*) FROM replayed),
                   pg_notify('\(WebhookSchema.notifyChannel)', '')
            """, [.text(endpointID), .timestamptz(since)])[0].decode(0, as: Int.self)
    }

    /// Enables a disabled endpoint: its pending deliveries go out again from where they stopped.
    /// False when there is no such endpoint.
    public static func enable(endpointID: String, on connection: Connection) throws(PostgresError) -> Bool {
        let result = try connection.query("""
            WITH enabled AS (
                UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL,
                    updated_at = now()
                WHERE id = $1 RETURNING id
            )
            SELECT count(*), pg_notify('\(WebhookSchema.notifyChannel)', '') FROM enabled
            """, [.text(endpointID)])
        return try result[0].decode(0, as: Int.self) == 1
    }

    /// One event's delivery to one endpoint, for `payhook events list`.
    public struct Listed: Sendable, Equatable {
        public let eventID: String
        public let kind: String
        public let outTradeNo: String
        public let committedAt: Date
        public let endpointID: String?
        public let state: String?
        public let attempts: Int32?
        public let lastStatus: Int32?
        public let lastError: String?
    }

    /// Events newest first, each with its deliveries, optionally for one order or in one
    /// delivery state.
    public static func list(outTradeNo: String?, state: String?, limit: Int,
                            on connection: Connection) throws(PostgresError) -> [Listed] {
        try connection.query("""
            SELECT o.event_id, o.kind, o.out_trade_no, o.created_at, d.endpoint_id, d.state, d.attempts,
                   d.last_status, d.last_error
            FROM order_outbox AS o LEFT JOIN webhook_deliveries AS d ON d.event_id = o.event_id
            WHERE ($1::text IS NULL OR o.out_trade_no = $1) AND ($2::text IS NULL OR d.state = $2)
            ORDER BY o.id DESC, d.endpoint_id
            LIMIT $3
            """, [.text(outTradeNo), .text(state), .int64(Int64(limit))]).rows.map { row throws(PostgresError) in
            Listed(eventID: try row.decode(0), kind: try row.decode(1), outTradeNo: try row.decode(2),
                   committedAt: try row.decode(3), endpointID: try row.decode(4), state: try row.decode(5),
                   attempts: try row.decode(6), lastStatus: try row.decode(7), lastError: try row.decode(8))
        }
    }
}
