public import Foundation
public import Postgres
import PayhookCore

/// How the queue's partitions are cut and kept (`queue:` and `retention:` in payhook.yaml).
public struct PartitionSettings: Sendable, Equatable {
    /// Seconds of received time per partition; boundaries fall on multiples of it since the
    /// Unix epoch, so a day is a UTC day. Default one day.
    public var intervalSeconds: Int64 = 86_400
    /// Partitions made ahead of the one holding now. Default 2.
    public var ahead = 2
    /// Finished callbacks received longer ago than this go with their partition; nil keeps
    /// everything. Default 7 days.
    public var keepSeconds: Int64? = 7 * 86_400
    /// Time between the maintainer's runs. Default 5 minutes.
    public var every: Duration = .seconds(300)

    public init() {}
}

/// Which partitions to make and which are past retention, decided without I/O. Times are
/// whole seconds since the Unix epoch; a range is `[lower, upper)`.
public enum PartitionPlan {
    public struct Range: Sendable, Equatable, CustomStringConvertible {
        public let lower: Int64
        public let upper: Int64

        public init(_ lower: Int64, _ upper: Int64) {
            self.lower = lower
            self.upper = upper
        }

        public var description: String { "[\(lower), \(upper))" }
    }

    /// The ranges that make the partitions reach `ahead` intervals past the one holding
    /// `now`, continuing from `lastUpper` (the highest existing bound). A start off the grid
    /// (the partition the upgrade made) is brought onto it by a shorter first range. A long
    /// gap (no maintainer for days) becomes one catch-up range up to the current interval,
    /// not a partition per missed interval.
    public static func toCreate(lastUpper: Int64?, now: Int64, intervalSeconds interval: Int64, ahead: Int) -> [Range] {
        precondition(interval > 0 && ahead >= 0)
        let current = floor(now, interval)
        let horizon = current + (Int64(ahead) + 1) * interval
        var start = lastUpper ?? current
        var ranges: [Range] = []
        if start < current - interval {
            ranges.append(Range(start, current))
            start = current
        }
        while start < horizon {
            let next = floor(start, interval) + interval
            ranges.append(Range(start, next))
            start = next
        }
        return ranges
    }

    /// The partitions whose every row was received more than `keepSeconds` before `now`.
    public static func expired(_ partitions: [Range], now: Int64, keepSeconds: Int64) -> [Range] {
        partitions.filter { $0.upper <= now - keepSeconds }
    }

    static func floor(_ value: Int64, _ interval: Int64) -> Int64 {
        let remainder = value % interval
        return remainder < 0 ? value - remainder - interval : value - remainder
    }
}

/// The partition maintainer: makes partitions ahead of time and drops those past
/// retention, one maintainer at a time across every host (an advisory lock). Run by each
/// worker pool's maintainer thread and by `payhook migrate`.
public struct QueueMaintenance: Sendable {
    public let settings: PartitionSettings

    /// Serializes maintainers on all hosts; the migrations' key plus one.
    static let advisoryLockKey: Int64 = 0x7061_7968_6F6F_6B01
    /// How long a partition change waits for the tables' locks before it gives up until the
    /// next run, so a long transaction elsewhere never queues the hot path behind it.
    static let lockTimeout = "500ms"
    /// At most this many unfinished callbacks are carried out of a partition being dropped
    /// (copied under the parents' lock, so the pause grows with them); more hold it back.
    public static let carryLimit: Int64 = 10_000

    public init(settings: PartitionSettings) {
        self.settings = settings
    }

    /// A partition of all three tables, named by its suffix (`_p20261202t000000`).
    public struct Partition: Sendable, Equatable {
        public let suffix: String
        public let range: PartitionPlan.Range
    }

    /// A partition past retention that stays: more callbacks in it are unfinished than a
    /// drop carries (`carryLimit`); the workers have a backlog to catch up on first.
    public struct Held: Sendable, Equatable {
        public let suffix: String
        public let unfinished: Int64

        public init(suffix: String, unfinished: Int64) {
            self.suffix = suffix
            self.unfinished = unfinished
        }
    }

    public struct Report: Sendable, Equatable {
        public var created: [String] = []
        public var dropped: [String] = []
        /// Unfinished and dead callbacks carried into the default partition.
        public var carried: Int64 = 0
        public var defaultPruned: Int64 = 0
        public var held: [Held] = []
        /// The first step that failed (a lock not had in time, a database error), if any.
        public var error: String?

        public var changedAnything: Bool { !created.isEmpty || !dropped.isEmpty || defaultPruned > 0 }
    }

    /// One run: partitions ahead, then retention, recorded in `queue_maintenance`. Nil when
    /// another maintainer holds the lock.
    public func run(on connection: Connection) throws(PostgresError) -> Report? {
        try connection.withAdvisoryLock(Self.advisoryLockKey, wait: false) { () throws(PostgresError) in
            var report = Report()
            try ensurePartitions(on: connection, into: &report)
            // Retention does not depend on the partitions ahead: it runs even if those failed.
            if let keep = settings.keepSeconds {
                try applyRetention(keepSeconds: keep, on: connection, into: &report)
            }
            try record(report, on: connection)
            return report
        }
    }

    /// Only the partitions ahead (for `payhook migrate`). Nil when another maintainer holds the lock.
    public func ensurePartitions(on connection: Connection) throws(PostgresError) -> Report? {
        try connection.withAdvisoryLock(Self.advisoryLockKey, wait: false) { () throws(PostgresError) in
            var report = Report()
            try ensurePartitions(on: connection, into: &report)
            return report
        }
    }

    /// The range partitions (of `callback_jobs`; the other two tables have the same), oldest first.
    public static func partitions(on connection: Connection) throws(PostgresError) -> [Partition] {
        try connection.query("""
            SELECT substr(partition, length('callback_jobs') + 1), extract(epoch FROM lower_bound)::bigint,
                   extract(epoch FROM upper_bound)::bigint
            FROM queue_partitions WHERE parent = 'callback_jobs' AND NOT is_default
            ORDER BY upper_bound
            """).rows.map { row throws(PostgresError) in
            Partition(suffix: try row.decode(0), range: PartitionPlan.Range(try row.decode(1), try row.decode(2)))
        }
    }

    private func now(on connection: Connection) throws(PostgresError) -> Int64 {
        try connection.query("SELECT floor(extract(epoch FROM now()))::bigint")[0].decode(0)
    }

    private func ensurePartitions(on connection: Connection, into report: inout Report) throws(PostgresError) {
        let ranges = PartitionPlan.toCreate(
            lastUpper: try Self.partitions(on: connection).last?.range.upper, now: try now(on: connection),
            intervalSeconds: settings.intervalSeconds, ahead: settings.ahead)
        for range in ranges {
            do {
                let made: Bool = try lockLimited(on: connection) { () throws(PostgresError) in
                    try connection.query("SELECT payhook_queue_add_partition(to_timestamp($1), to_timestamp($2))",
                                         [.int64(range.lower), .int64(range.upper)])[0].decode(0)
                }
                if made { report.created.append(Self.suffix(range.lower)) }
            } catch {
                // Each range continues from the last: stop here and try again next run.
                if !connection.isConnected { throw error }
                report.error = "making partition \(Self.suffix(range.lower)): \(error)"
                return
            }
        }
    }

    private func applyRetention(keepSeconds: Int64, on connection: Connection, into report: inout Report) throws(PostgresError) {
        let now = try now(on: connection)
        let partitions = try Self.partitions(on: connection)
        let expired = PartitionPlan.expired(partitions.map(\.range), now: now, keepSeconds: keepSeconds)
        let unfinished = try Self.unfinished(before: now - keepSeconds, on: connection)
        for partition in partitions where expired.contains(partition.range) {
            if let count = unfinished[partition.suffix], count > Self.carryLimit {
                report.held.append(Held(suffix: partition.suffix, unfinished: count))
                continue
            }
            do {
                report.carried += try lockLimited(on: connection) { () throws(PostgresError) in
                    try connection.query("SELECT payhook_queue_drop_partition($1)", [.text(partition.suffix)])[0]
                        .decode(0, as: Int64.self)
                }
                report.dropped.append(partition.suffix)
            } catch {
                // Its locks not had in time: the next run tries again.
                if !connection.isConnected { throw error }
                report.error = report.error ?? "dropping partition \(partition.suffix): \(error)"
            }
        }
        // Finished rows the default partition holds (strays and replayed dead callbacks)
        // are few: deleted by row.
        report.defaultPruned = try connection.query("""
            WITH gone AS (
                DELETE FROM callback_jobs_default
                WHERE state IN ('done', 'rejected') AND received_at < to_timestamp($1)
                RETURNING callback_id, received_at
            ), payloads AS (
                DELETE FROM callback_payloads_default p USING gone
                WHERE p.id = gone.callback_id AND p.received_at = gone.received_at
            ), attempts AS (
                DELETE FROM callback_attempts_default a USING gone
                WHERE a.callback_id = gone.callback_id AND a.callback_received_at = gone.received_at
            )
            SELECT count(*) FROM gone
            """, [.int64(now - keepSeconds)])[0].decode(0)
    }

    /// Pending and processing callbacks per partition received before `cutoff` (through the
    /// claim's partial indexes).
    static func unfinished(before cutoff: Int64, on connection: Connection) throws(PostgresError) -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for row in try connection.query("""
            SELECT substr(tableoid::regclass::text, length('callback_jobs') + 1), count(*) FROM callback_jobs
            WHERE state IN ('pending', 'processing') AND received_at < to_timestamp($1)
            GROUP BY tableoid
            """, [.int64(cutoff)]).rows {
            counts[try row.decode(0)] = try row.decode(1)
        }
        return counts
    }

    private func lockLimited<T>(on connection: Connection, _ body: () throws(PostgresError) -> T) throws(PostgresError) -> T {
        try connection.transaction { connection throws(PostgresError) in
            try connection.query("SELECT set_config('lock_timeout', $1, true)", [.text(Self.lockTimeout)])
            return try body()
        }
    }

    private func record(_ report: Report, on connection: Connection) throws(PostgresError) {
        try connection.query("""
            INSERT INTO queue_maintenance (ran_at, partitions_created, partitions_dropped, callbacks_carried, default_pruned,
                                           held_partitions, held_callbacks, error)
            VALUES (now(), $1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (singleton) DO UPDATE SET
                ran_at = excluded.ran_at, partitions_created = excluded.partitions_created,
                partitions_dropped = excluded.partitions_dropped, callbacks_carried = excluded.callbacks_carried,
                default_pruned = excluded.default_pruned, held_partitions = excluded.held_partitions,
                held_callbacks = excluded.held_callbacks, error = excluded.error
            """, [
                .int64(Int64(report.created.count)), .int64(Int64(report.dropped.count)), .int64(report.carried),
                .int64(report.defaultPruned), .int64(Int64(report.held.count)),
                .int64(report.held.reduce(0) { $0 + $1.unfinished }), .text(report.error),
            ])
    }

    /// The partition suffix of a lower bound, as `payhook_queue_add_partition` names it.
    public static func suffix(_ lower: Int64) -> String {
        "_p" + CivilTime(epochSeconds: lower).text(separator: "t", compact: true)
    }
}
