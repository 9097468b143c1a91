public import Postgres

/// Retention on the webhook side (`retention.keep_days`, as the callbacks'): an outbox event
/// older than it whose every delivery was delivered goes, with those deliveries and their
/// attempts; an event with a delivery pending, in flight or dead stays (it can still be
/// delivered or replayed), and so do orders and order events, always. Row deletes in pages
/// of the outbox's ids: these rows are past the claim path (the pending-delivery index).
public struct DeliveryRetention: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Events older than this may go. Default 7 days.
        public var keepSeconds: Int64 = 7 * 86_400
        /// How often a worker process tries. Default 300 s.
        public var every: Duration = .seconds(300)
        /// Events looked at per statement. Default 5,000.
        public var pageSize = 5_000

        public init() {}
    }

    public struct Report: Sendable, Equatable {
        public var events: Int64 = 0
        public var deliveries: Int64 = 0
        public var attempts: Int64 = 0
        /// Events past retention kept because a delivery of theirs is not delivered.
        public var kept: Int64 = 0

        public init(events: Int64 = 0, deliveries: Int64 = 0, attempts: Int64 = 0, kept: Int64 = 0) {
            self.events = events
            self.deliveries = deliveries
            self.attempts = attempts
            self.kept = kept
        }
    }

    /// One at a time across hosts, beside the queue maintainer's key.
    static let advisoryLockKey: Int64 = 0x7061_7968_6F6F_6B02

    public let settings: Settings

    public init(settings: Settings) {
        self.settings = settings
    }

    /// One run over every event past retention; nil when another process holds the lock.
    public func run(on connection: Connection) throws(PostgresError) -> Report? {
        try connection.withAdvisoryLock(Self.advisoryLockKey, wait: false) { () throws(PostgresError) in
            var report = Report()
            // The newest id past retention bounds the pages, so none scans the recent rows.
            let last: Int64? = try connection.query("""
                SELECT max(id) FROM order_outbox WHERE created_at < now() - make_interval(secs => $1::float8)
                """, [.int64(settings.keepSeconds)])[0].decode(0)
            guard let last else { return report }
            var after: Int64 = 0
            while after < last {
                let row = try connection.query(Self.pageSQL, [
                    .int64(after), .int64(last), .int64(settings.keepSeconds), .int(settings.pageSize),
                ])[0]
                guard let pageEnd: Int64 = try row.decode(0) else { break }
                after = pageEnd
                report.events += try row.decode(1)
                report.deliveries += try row.decode(2)
                report.attempts += try row.decode(3)
                report.kept += try row.decode(4)
            }
            return report
        }
    }

    /// One page: the events, which of them a delivery still holds, and the deletes of the
    /// rest with their deliveries and attempts. A delivery replayed meanwhile is no longer
    /// `delivered` when its delete re-reads it; its event's delete then fails on the foreign
    /// key, the statement undoes itself, and the next run tries again.
    static let pageSQL = """
        WITH page AS (
            SELECT id, event_id FROM order_outbox
            WHERE id > $1 AND id <= $2 AND created_at < now() - make_interval(secs => $3::float8)
            ORDER BY id LIMIT $4
        ), held AS (
            SELECT DISTINCT d.event_id FROM webhook_deliveries AS d JOIN page USING (event_id)
            WHERE d.state <> 'delivered'
        ), gone AS (
            SELECT id, event_id FROM page WHERE event_id NOT IN (SELECT event_id FROM held)
        ), deliveries AS (
            SELECT d.id FROM webhook_deliveries AS d JOIN gone USING (event_id)
        ), attempts AS (
            DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM deliveries) RETURNING 1
        ), deleted AS (
            DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM deliveries) AND state = 'delivered' RETURNING 1
        ), events AS (
            DELETE FROM order_outbox WHERE id IN (SELECT id FROM gone) RETURNING 1
        )
        SELECT (SELECT max(id) FROM page), (SELECT count(*) FROM events), (SELECT count(*) FROM deleted),
               (SELECT count(*) FROM attempts), (SELECT count(*) FROM held)
        """
}
