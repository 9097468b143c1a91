public import Foundation
public import Postgres

/// Orders the site creates through Payhook's API: written once with what the site asked
/// for and a digest of the request, so a repeat is recognised and a different body under
/// the same number is refused; closed only through `close(_:)`, which never overrides a
/// payment that committed first.
public enum SiteOrderStore {
    /// What the site asked for, as stored on the order.
    public struct NewOrder: Sendable, Equatable {
        public var outTradeNo: String
        public var channel: String
        public var scene: String
        public var amountMinor: Int64
        public var currency: String
        public var subject: String
        public var description: String?
        public var expiresAt: Date?
        public var returnURL: String?
        public var attach: String?
        /// The payer details as a JSON object, or nil.
        public var payerJSON: String?
        /// SHA-256 of the request's canonical form: equal digests are the same request.
        public var requestDigest: [UInt8]

        public init(outTradeNo: String, channel: String, scene: String, amountMinor: Int64, currency: String,
                    subject: String, description: String?, expiresAt: Date?, returnURL: String?, attach: String?,
                    payerJSON: String?, requestDigest: [UInt8]) {
            self.outTradeNo = outTradeNo
            self.channel = channel
            self.scene = scene
            self.amountMinor = amountMinor
            self.currency = currency
            self.subject = subject
            self.description = description
            self.expiresAt = expiresAt
            self.returnURL = returnURL
            self.attach = attach
            self.payerJSON = payerJSON
            self.requestDigest = requestDigest
        }
    }

    /// An order as the API shows it.
    public struct StoredOrder: Sendable, Equatable {
        public var outTradeNo: String
        public var channel: String
        public var scene: String?
        public var channelTradeNo: String?
        public var amountMinor: Int64
        public var currency: String
        public var status: OrderStatus
        public var subject: String?
        public var description: String?
        public var expiresAt: Date?
        public var returnURL: String?
        public var attach: String?
        public var payerJSON: String?
        public var payer: String?
        public var createdAt: Date
        public var paidAt: Date?
        public var updatedAt: Date
        public var requestDigest: [UInt8]?
        /// What succeeded refunds gave back, in minor units.
        public var refundedMinor: Int64 = 0

        public var snapshot: OrderSnapshot {
            OrderSnapshot(outTradeNo: outTradeNo, channel: channel, channelTradeNo: channelTradeNo, amountMinor: amountMinor,
                          currency: currency, status: status, paidAt: paidAt, payer: payer, refundedMinor: refundedMinor)
        }
    }

    public enum CreateOutcome: Sendable, Equatable {
        /// Written now.
        case created(StoredOrder)
        /// The same request again: the order it made.
        case repeated(StoredOrder)
        /// The number is taken by a different request (or by an order the site did not make here).
        case conflict(StoredOrder)
    }

    static let migration = """
        ALTER TABLE orders
            ADD COLUMN scene text,
            ADD COLUMN subject text,
            ADD COLUMN description text,
            ADD COLUMN expires_at timestamptz,
            ADD COLUMN return_url text,
            ADD COLUMN attach text,
            ADD COLUMN payer_details jsonb,
            ADD COLUMN request_digest bytea;
        ALTER TABLE order_events DROP CONSTRAINT order_events_source_check;
        ALTER TABLE order_events ADD CONSTRAINT order_events_source_check
            CHECK (source IN ('callback', 'reconcile', 'admin', 'api', 'expiry'));
        CREATE INDEX orders_expiring_idx ON orders (expires_at) WHERE status = 'created' AND expires_at IS NOT NULL;
        """

    static let columns = """
        out_trade_no, channel, scene, channel_trade_no, amount_minor, currency, status, subject, description,
        expires_at, return_url, attach, payer_details::text, payer, created_at, paid_at, updated_at, request_digest,
        refunded_minor
        """

    /// Writes the order and its `created` event, or reads the order that already holds the
    /// number and says whether it is this same request.
    public static func create(_ order: NewOrder, on connection: Connection) throws(PostgresError) -> CreateOutcome {
        try create([order], on: connection)[0]
    }

    /// Writes many orders and their `created` events in one statement (one commit for all:
    /// the site API batches concurrent requests so), then reads the orders whose numbers were
    /// taken and compares digests. One outcome per order, in order; a number twice in the
    /// batch is written once, and the second is a repeat or a conflict of the first.
    public static func create(_ orders: [NewOrder], on connection: Connection) throws(PostgresError) -> [CreateOutcome] {
        guard !orders.isEmpty else { return [] }
        let inserted = try stored(connection.query(prepared: "payhook_site_orders_insert", """
            WITH input AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[],
                                     $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::bytea[]) WITH ORDINALITY
                    AS i(out_trade_no, channel, scene, amount_minor, currency, subject, description, expires_at,
                         return_url, attach, payer_details, request_digest, position)
            ), inserted AS (
                INSERT INTO orders (out_trade_no, channel, scene, amount_minor, currency, subject, description, expires_at,
                                    return_url, attach, payer_details, request_digest)
                SELECT out_trade_no, channel, scene, amount_minor, currency, subject, description, expires_at,
                       return_url, attach, payer_details::jsonb, request_digest
                FROM input ORDER BY position
                ON CONFLICT (out_trade_no) DO NOTHING
                RETURNING \(columns)
            ), event AS (
                INSERT INTO order_events (out_trade_no, source, kind, to_status, detail)
                SELECT out_trade_no, 'api', 'transition', 'created', 'created through the site API' FROM inserted
            )
            SELECT * FROM inserted
            """, [
                .textArray(orders.map(\.outTradeNo)), .textArray(orders.map(\.channel)), .textArray(orders.map(\.scene)),
                .int64Array(orders.map(\.amountMinor)), .textArray(orders.map(\.currency)), .textArray(orders.map(\.subject)),
                .textArray(orders.map(\.description)), .timestamptzArray(orders.map(\.expiresAt)),
                .textArray(orders.map(\.returnURL)), .textArray(orders.map(\.attach)), .textArray(orders.map(\.payerJSON)),
                .byteaArray(orders.map(\.requestDigest)),
            ]))
        var written = Dictionary(inserted.map { ($0.outTradeNo, $0) }, uniquingKeysWith: { first, _ in first })
        let taken = Set(orders.map(\.outTradeNo)).subtracting(written.keys)
        var existing: [String: StoredOrder] = [:]
        if !taken.isEmpty {
            for order in try stored(connection.query(prepared: "payhook_site_orders_find_many", """
                SELECT \(columns) FROM orders WHERE out_trade_no = ANY($1::text[])
                """, [.textArray(taken.sorted())])) {
                existing[order.outTradeNo] = order
            }
        }
        return try orders.map { order throws(PostgresError) -> CreateOutcome in
            if let row = written.removeValue(forKey: order.outTradeNo) { return .created(row) }
            guard let held = existing[order.outTradeNo] ?? inserted.first(where: { $0.outTradeNo == order.outTradeNo }) else {
                // Deleted between the two statements: nothing the site can rely on; let it retry.
                throw PostgresError(code: .decoding, context: "order vanished after a conflicting insert")
            }
            return held.requestDigest == order.requestDigest ? .repeated(held) : .conflict(held)
        }
    }

    /// The order by `out_trade_no` or channel trade number.
    public static func find(_ id: String, on connection: Connection) throws(PostgresError) -> StoredOrder? {
        try stored(connection.query(prepared: "payhook_site_orders_find", """
            SELECT \(columns) FROM orders WHERE out_trade_no = $1 OR channel_trade_no = $1
            ORDER BY out_trade_no = $1 DESC LIMIT 1
            """, [.text(id)])).first
    }

    /// Closes the order if it is still `created`, with an event from `source`; otherwise
    /// leaves it as it is (a payment that committed first wins). Returns the order after.
    public static func close(_ outTradeNo: String, source: EvidenceSource, detail: String,
                             on connection: Connection) throws(PostgresError) -> StoredOrder? {
        try connection.transaction { connection throws(PostgresError) -> StoredOrder? in
            guard let order = try OrderStore.lock([outTradeNo], on: connection)[outTradeNo] else { return nil }
            if order.status == .created {
                try connection.query(prepared: "payhook_site_orders_close", """
                    UPDATE orders SET status = 'closed', updated_at = now() WHERE out_trade_no = $1
                    """, [.text(outTradeNo)])
                try OrderStore.insert([OrderEventRecord(
                    outTradeNo: outTradeNo, callbackID: nil, source: source, kind: .transition, fromStatus: .created,
                    toStatus: .closed, flagged: false, detail: detail)], on: connection)
            }
            return try find(outTradeNo, on: connection)
        }
    }

    /// Orders still `created` whose `expires_at` has passed, oldest first, stamped as asked
    /// about (`reconciled_at`) so that sweepers on other hosts skip them for `everySeconds`.
    public static func claimExpired(limit: Int, everySeconds: Int, on connection: Connection) throws(PostgresError) -> [StoredOrder] {
        try stored(connection.query(prepared: "payhook_site_orders_expired_claim", """
            UPDATE orders SET reconciled_at = now()
            WHERE out_trade_no IN (
                SELECT out_trade_no FROM orders
                WHERE status = 'created' AND expires_at IS NOT NULL AND expires_at < now()
                  AND (reconciled_at IS NULL OR reconciled_at < now() - $2 * interval '1 second')
                ORDER BY expires_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED)
            RETURNING \(columns)
            """, [.int64(Int64(limit)), .int64(Int64(everySeconds))]))
    }

    private static func stored(_ result: PostgresResult) throws(PostgresError) -> [StoredOrder] {
        try result.rows.map { row throws(PostgresError) in
            StoredOrder(
                outTradeNo: try row.decode(0), channel: try row.decode(1), scene: try row.decode(2),
                channelTradeNo: try row.decode(3), amountMinor: try row.decode(4), currency: try row.decode(5),
                status: try .decoded(row.decode(6)), subject: try row.decode(7), description: try row.decode(8), expiresAt: try row.decode(9),
                returnURL: try row.decode(10), attach: try row.decode(11), payerJSON: try row.decode(12),
                payer: try row.decode(13), createdAt: try row.decode(14), paidAt: try row.decode(15),
                updatedAt: try row.decode(16), requestDigest: try row.decode(17), refundedMinor: try row.decode(18))
        }
    }
}
