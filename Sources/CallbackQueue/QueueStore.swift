public import Foundation
public import PayhookCore
public import Postgres

/// The queue's statements, run on a connection that the calling thread owns: insert a
/// batch, claim due rows under a lease, finish them behind the lease fence.
public struct QueueStore: Sendable {
    /// The NOTIFY channel that wakes workers after each committed batch.
    public static let notifyChannel = "payhook_callbacks"

    /// Identifies the lease holder (`locked_by`): host, process and thread.
    public let workerID: String
    /// How long a claim holds a row before anyone may take it over.
    public let leaseSeconds: Double

    public init(workerID: String, leaseSeconds: Double = 30) {
        self.workerID = workerID
        self.leaseSeconds = leaseSeconds
    }

    /// Inserts callbacks in one statement and one commit, NOTIFYing workers in the same
    /// transaction. Returns their ids in input order.
    public static func insert(_ callbacks: [RawCallback], on connection: Connection) throws(PostgresError) -> [Int64] {
        guard !callbacks.isEmpty else { return [] }
        // Every callback's headers in one flat pair of arrays; each row takes its slice.
        let headers = callbacks.flatMap(\.headers)
        let result = try connection.query(prepared: "payhook_enqueue", insertSQL, [
            .textArray(callbacks.map(\.channel)),
            .textArray(callbacks.map(\.kind.rawValue)),
            .timestamptzArray(callbacks.map(\.receivedAt)),
            .textArray(callbacks.map(\.sourceIP)),
            .textArray(callbacks.map(\.peerIP)),
            .textArray(callbacks.map(\.method)),
            .textArray(callbacks.map(\.path)),
            .textArray(callbacks.map(\.query)),
            .int32Array(callbacks.map { Int32($0.headers.count) }),
            .byteaArray(callbacks.map(\.body)),
            .textArray(headers.map(\.name)),
            // Values that are not UTF-8 (rare) go in as their bytes; the rest straight from the strings.
            headers.contains { $0.nonUTF8Bytes != nil } ? .byteaArray(headers.map(\.bytes)) : .byteaArray(utf8: headers.map(\.value)),
        ])
        let ids = try result.rows.map { row throws(PostgresError) in try row.decode(0, as: Int64.self) }
        guard ids.count == callbacks.count else {
            throw PostgresError(code: .client, context: "insert returned \(ids.count) ids for \(callbacks.count) rows")
        }
        return ids
    }

    /// Takes up to `limit` due rows: expired leases first, then pending rows whose
    /// `next_attempt_at` has come. One round trip; locked rows are skipped.
    public func claim(limit: Int, on connection: Connection) throws(PostgresError) -> [ClaimedCallback] {
        let result = try connection.query(prepared: "payhook_claim", Self.claimSQL, [
            .int64(Int64(limit)), .text(workerID), .int64(Int64((leaseSeconds * 1000).rounded())),
        ])
        return try result.rows.map { row throws(PostgresError) in
            let channel: String = try row.decode(3)
            let kindText: String = try row.decode(4)
            var callback = RawCallback(
                channel: channel, method: try row.decode(8), path: try row.decode(9), query: try row.decode(10),
                body: try row.decode(13), sourceIP: try row.decode(6), peerIP: try row.decode(7),
                receivedAt: try row.decode(5))
            let stored: Result<RawCallback, CorruptRow>
            do throws(CorruptRow) {
                guard let kind = RawCallback.Kind(rawValue: kindText) else {
                    throw CorruptRow(column: "kind", problem: "is neither notify nor return")
                }
                callback.kind = kind
                callback.headers = try Self.headers(row, names: 11, values: 12)
                stored = .success(callback)
            } catch {
                stored = .failure(error)
            }
            return ClaimedCallback(id: try row.decode(0), receivedAt: try row.decode(5), attempt: try row.decode(1),
                                   leaseExpiresAt: try row.decode(2), channel: channel, stored: stored)
        }
    }

    /// The stored headers, or why they do not read back (a NULL element: a damaged row).
    static func headers(_ row: PostgresRow, names: Int, values: Int) throws(CorruptRow) -> [HeaderField] {
        let nameList: [String]
        let valueList: [[UInt8]]
        do {
            nameList = try row.textArray(names)
            valueList = try row.byteaArray(values)
        } catch {
            throw CorruptRow(column: "headers", problem: "do not read back (\(error))")
        }
        // The CHECK keeps the two the same length.
        return zip(nameList, valueList).map { HeaderField(name: $0, bytes: $1) }
    }

    /// One finished attempt.
    public struct Finish: Sendable {
        public var callbackID: Int64
        /// The partition key, as claimed.
        public var receivedAt: Date
        public var attempt: Int32
        public var startedAt: Date
        public var outcome: AttemptOutcome
        /// Ids parsed from the payload, stored for lookups when known.
        public var outTradeNo: String?
        public var channelTradeNo: String?

        public init(_ claimed: ClaimedCallback, startedAt: Date, outcome: AttemptOutcome,
                    outTradeNo: String? = nil, channelTradeNo: String? = nil) {
            self.init(callbackID: claimed.id, receivedAt: claimed.receivedAt, attempt: claimed.attempt,
                      startedAt: startedAt, outcome: outcome, outTradeNo: outTradeNo, channelTradeNo: channelTradeNo)
        }

        public init(callbackID: Int64, receivedAt: Date, attempt: Int32, startedAt: Date, outcome: AttemptOutcome,
                    outTradeNo: String? = nil, channelTradeNo: String? = nil) {
            self.callbackID = callbackID
            self.receivedAt = receivedAt
            self.attempt = attempt
            self.startedAt = startedAt
            self.outcome = outcome
            self.outTradeNo = outTradeNo
            self.channelTradeNo = channelTradeNo
        }
    }

    /// Writes the outcomes of claimed callbacks in one statement. A row changes only
    /// while this worker still holds the lease of that very attempt (the fence); every
    /// attempt gets a `callback_attempts` row, `lease_lost` where the fence refused.
    /// Returns the ids the fence refused.
    @discardableResult
    public func finish(_ finishes: [Finish], on connection: Connection) throws(PostgresError) -> Set<Int64> {
        guard !finishes.isEmpty else { return [] }
        return try refused(finishes, connection.query(finishStatement(finishes)))
    }

    /// `finish` as a statement, to send in a pipeline; `refused` reads its result.
    public func finishStatement(_ finishes: [Finish]) -> SQLStatement {
        SQLStatement(prepared: "payhook_finish", Self.finishSQL, [
            .int64Array(finishes.map(\.callbackID)),
            .int32Array(finishes.map(\.attempt)),
            .textArray(finishes.map(\.outcome.nextState.rawValue)),
            .textArray(finishes.map(\.outcome.label)),
            .int64Array(finishes.map(\.outcome.delayMilliseconds)),
            .int32Array(finishes.map(\.outcome.attemptsGivenBack)),
            .textArray(finishes.map(\.outcome.reason?.rawValue)),
            .textArray(finishes.map(\.outcome.error)),
            .textArray(finishes.map(\.outTradeNo)),
            .textArray(finishes.map(\.channelTradeNo)),
            .timestamptzArray(finishes.map(\.startedAt)),
            .text(workerID),
            .timestamptzArray(finishes.map(\.receivedAt)),
        ])
    }

    /// The ids of `finishes` that the fence refused, from the result of `finishStatement`.
    public func refused(_ finishes: [Finish], _ result: PostgresResult) throws(PostgresError) -> Set<Int64> {
        let finished = Set(try result.rows.map { row throws(PostgresError) in try row.decode(0, as: Int64.self) })
        return Set(finishes.map(\.callbackID)).subtracting(finished)
    }

    /// The lease fence, taken before a transaction writes anything that depends on the
    /// lease (the orders): the claims this worker still holds for that very attempt,
    /// row-locked until the transaction ends, so no one can take them over before `finish`
    /// (which applies the same fence) commits. Call inside a transaction.
    public func holdLeases(_ claims: [ClaimedCallback], on connection: Connection) throws(PostgresError) -> Set<Int64> {
        guard !claims.isEmpty else { return [] }
        return try held(claims, connection.query(holdStatement(claims)))
    }

    /// `holdLeases` as a statement, to send in a pipeline; `held` reads its result.
    public func holdStatement(_ claims: [ClaimedCallback]) -> SQLStatement {
        SQLStatement(prepared: "payhook_hold_leases", Self.holdSQL, [
            .int64Array(claims.map(\.id)), .text(workerID), .timestamptzArray(claims.map(\.receivedAt)),
        ])
    }

    /// The claims still held for that very attempt, from the result of `holdStatement`.
    public func held(_ claims: [ClaimedCallback], _ result: PostgresResult) throws(PostgresError) -> Set<Int64> {
        var attempts: [Int64: Int32] = [:]
        for row in result.rows { attempts[try row.decode(0)] = try row.decode(1) }
        return Set(claims.filter { attempts[$0.id] == $0.attempt }.map(\.id))
    }

    static let holdSQL = """
        SELECT job.callback_id, job.attempts
        FROM unnest($1::bigint[], $3::timestamptz[]) AS held(callback_id, received_at)
        JOIN callback_jobs AS job ON job.callback_id = held.callback_id AND job.received_at = held.received_at
        WHERE job.locked_by = $2
        FOR UPDATE OF job
        """

    static let insertSQL = """
        WITH input AS (
            SELECT *, sum(header_count) OVER (ORDER BY position) - header_count AS header_start
            FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                        $7::text[], $8::text[], $9::int[], $10::bytea[]) WITH ORDINALITY
                AS input(channel, kind, received_at, source_ip, peer_ip, method, path, query, header_count, body,
                         position)
        ), payload AS (
            INSERT INTO callback_payloads
                (channel, kind, received_at, source_ip, peer_ip, method, path, query, header_names, header_values,
                 body)
            SELECT channel, kind, received_at, source_ip::inet, peer_ip::inet, method, path, query,
                   coalesce(($11::text[])[header_start + 1 : header_start + header_count], '{}'),
                   coalesce(($12::bytea[])[header_start + 1 : header_start + header_count], '{}'), body
            FROM input ORDER BY position
            RETURNING id, channel, received_at
        ), job AS (
            INSERT INTO callback_jobs (callback_id, received_at, channel, next_attempt_at)
            SELECT id, received_at, channel, received_at FROM payload
        )
        SELECT payload.id FROM payload, (SELECT pg_notify('\(notifyChannel)', '')) AS notified
        """

    static let claimSQL = """
        WITH expired AS (
            SELECT callback_id, received_at FROM callback_jobs
            WHERE state = 'processing' AND locked_until < now()
            ORDER BY locked_until
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), due AS (
            SELECT callback_id, received_at FROM callback_jobs
            WHERE state = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), picked AS (
            (SELECT callback_id, received_at FROM expired UNION ALL SELECT callback_id, received_at FROM due) LIMIT $1
        ), claimed AS (
            UPDATE callback_jobs AS job
            SET state = 'processing', locked_by = $2,
                locked_until = now() + $3 * interval '1 millisecond',
                attempts = job.attempts + 1, updated_at = now()
            FROM picked
            WHERE job.callback_id = picked.callback_id AND job.received_at = picked.received_at
            RETURNING job.callback_id, job.received_at, job.attempts, job.locked_until
        )
        SELECT claimed.callback_id, claimed.attempts, claimed.locked_until, payload.channel, payload.kind,
               payload.received_at, payload.source_ip, payload.peer_ip, payload.method, payload.path,
               payload.query, payload.header_names, payload.header_values, payload.body
        FROM claimed
        JOIN callback_payloads AS payload ON payload.id = claimed.callback_id AND payload.received_at = claimed.received_at
        ORDER BY claimed.callback_id
        """

    static let finishSQL = """
        WITH input AS (
            SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::int[],
                                 $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
                                 $13::timestamptz[])
                AS input(callback_id, attempt, next_state, outcome, delay_ms, given_back, reason, error,
                         out_trade_no, channel_trade_no, started_at, received_at)
        ), finished AS (
            UPDATE callback_jobs AS job
            SET state = input.next_state,
                next_attempt_at = CASE WHEN input.delay_ms IS NULL THEN job.next_attempt_at
                                       ELSE now() + input.delay_ms * interval '1 millisecond' END,
                attempts = job.attempts - input.given_back,
                locked_by = NULL, locked_until = NULL,
                last_error = coalesce(input.error, job.last_error),
                -- A reason says why a row is not done; a row that got done has none left.
                reason = CASE WHEN input.next_state = 'done' THEN NULL ELSE coalesce(input.reason, job.reason) END,
                out_trade_no = coalesce(input.out_trade_no, job.out_trade_no),
                channel_trade_no = coalesce(input.channel_trade_no, job.channel_trade_no),
                updated_at = now()
            FROM input
            -- locked_by is set exactly while processing (a CHECK), so this is the fence; not
            -- naming the state keeps the plan on the primary key.
            WHERE job.callback_id = input.callback_id AND job.received_at = input.received_at
              AND job.locked_by = $12 AND job.attempts = input.attempt
            RETURNING job.callback_id
        ), logged AS (
            INSERT INTO callback_attempts (callback_id, callback_received_at, attempt, worker, started_at, outcome,
                                           reason, error)
            SELECT input.callback_id, input.received_at, input.attempt, $12, input.started_at,
                   CASE WHEN finished.callback_id IS NULL THEN 'lease_lost' ELSE input.outcome END,
                   input.reason, input.error
            FROM input LEFT JOIN finished ON finished.callback_id = input.callback_id
        )
        SELECT callback_id FROM finished
        """
}

extension QueueStore {
    /// The plans of the hot-path statements (insert, claim, finish), so tests and the
    /// benchmark can show that none of them scans the queue tables.
    public func explainHotPath(on connection: Connection) throws(PostgresError) -> [(statement: String, plan: String)] {
        func plan(_ sql: String, _ binds: [PostgresBind]) throws(PostgresError) -> String {
            try connection.query("EXPLAIN " + sql, binds).rows
                .map { row throws(PostgresError) in try row.decode(0, as: String.self) }
                .joined(separator: "\n")
        }
        let sample = [Int64](1...64)
        return [
            ("insert", try plan(Self.insertSQL, [
                .textArray(["c"]), .textArray(["notify"]), .timestamptzArray([Date()]), .textArray([nil]),
                .textArray([nil]), .textArray(["POST"]), .textArray(["/"]), .textArray([""]), .int32Array([1]),
                .byteaArray([[]]), .textArray(["Host"]), .byteaArray([Array("x".utf8)]),
            ])),
            ("claim", try plan(Self.claimSQL, [.int64(64), .text(workerID), .int64(30_000)])),
            ("hold", try plan(Self.holdSQL, [
                .int64Array(sample), .text(workerID), .timestamptzArray(sample.map { _ in Date() }),
            ])),
            ("finish", try plan(Self.finishSQL, [
                .int64Array(sample), .int32Array(sample.map { _ in 1 }), .textArray(sample.map { _ in "done" }),
                .textArray(sample.map { _ in "done" }), .int64Array(sample.map { _ in nil }),
                .int32Array(sample.map { _ in 0 }), .textArray(sample.map { _ in nil }),
                .textArray(sample.map { _ in nil }), .textArray(sample.map { _ in nil }),
                .textArray(sample.map { _ in nil }), .timestamptzArray(sample.map { _ in Date() }), .text(workerID),
                .timestamptzArray(sample.map { _ in Date() }),
            ])),
        ]
    }
}
