public import Postgres

/// The versioned schema. Each migration has an explicit, stable id; applied ids are
/// recorded in `payhook_migrations`. Never edit or reorder an applied migration: add one.
public enum Migrations {
    public struct Migration: Sendable {
        public let id: String
        public let sql: String
    }

    /// Serializes migrators on all hosts (`pg_advisory_lock`); an arbitrary fixed key.
    static let advisoryLockKey: Int64 = 0x7061_7968_6F6F_6B00

    public static let all: [Migration] = [
        Migration(id: "0001_callback_queue", sql: callbackQueue),
        Migration(id: "0002_orders", sql: orders),
        Migration(id: "0003_workers", sql: workers),
    ]

    /// Applies every migration not yet recorded, each in its own transaction, and returns
    /// the ids applied now. Safe to run from several hosts at once; a second run is a no-op.
    @discardableResult
    public static func apply(on connection: Connection, migrations: [Migration] = all) throws -> [String] {
        try connection.query("SELECT pg_advisory_lock($1)", [.int64(advisoryLockKey)])
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [.int64(advisoryLockKey)]) }
        try connection.execute(script: """
            SET client_min_messages TO warning;
            CREATE TABLE IF NOT EXISTS payhook_migrations (
                id text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let done = Set(try connection.query("SELECT id FROM payhook_migrations").rows.map {
            try $0.decode(0, as: String.self)
        })
        var applied: [String] = []
        for migration in migrations where !done.contains(migration.id) {
            try connection.transaction { connection throws(PostgresError) in
                try connection.execute(script: migration.sql)
                try connection.query("INSERT INTO payhook_migrations (id) VALUES ($1)", [.text(migration.id)])
            }
            applied.append(migration.id)
        }
        return applied
    }

    /// The ids recorded as applied, in order.
    public static func applied(on connection: Connection) throws -> [String] {
        try connection.query("SELECT id FROM payhook_migrations ORDER BY id").rows.map {
            try $0.decode(0, as: String.self)
        }
    }

    // The raw callback is written once into callback_payloads and never updated; the
    // mutable queue state lives in the narrow callback_jobs row, so claims and finishes
    // rewrite ~150 bytes, not the payload. `callbacks` joins them back for operators.
    // The hot tables carry no foreign keys: a per-row RI check costs more than the insert,
    // and the queue statements write payload, job and attempt rows together. Headers are
    // `json`, kept as the text written (an array of [name, value] pairs).
    static let callbackQueue = """
        CREATE TABLE callback_payloads (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            channel text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('notify', 'return')),
            received_at timestamptz NOT NULL,
            source_ip inet,
            peer_ip inet,
            method text NOT NULL,
            path text NOT NULL,
            query text NOT NULL DEFAULT '',
            headers json NOT NULL,
            body bytea NOT NULL
        );

        CREATE TABLE callback_jobs (
            callback_id bigint PRIMARY KEY,
            channel text NOT NULL,
            state text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'processing', 'done', 'rejected', 'dead')),
            attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            locked_by text,
            locked_until timestamptz,
            last_error text,
            reason text,
            out_trade_no text,
            channel_trade_no text,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CHECK ((state = 'processing') = (locked_by IS NOT NULL AND locked_until IS NOT NULL))
        ) WITH (
            fillfactor = 70,
            autovacuum_vacuum_scale_factor = 0.02,
            autovacuum_analyze_scale_factor = 0.02,
            autovacuum_vacuum_cost_delay = 0
        );

        -- The claim reads due rows through these partial indexes; a finished row leaves them.
        CREATE INDEX callback_jobs_pending_next_attempt_at_idx
            ON callback_jobs (next_attempt_at) WHERE state = 'pending';
        CREATE INDEX callback_jobs_processing_locked_until_idx
            ON callback_jobs (locked_until) WHERE state = 'processing';
        CREATE INDEX callback_jobs_dead_idx
            ON callback_jobs (callback_id) WHERE state = 'dead';
        CREATE INDEX callback_jobs_out_trade_no_idx
            ON callback_jobs (out_trade_no) WHERE out_trade_no IS NOT NULL;

        CREATE TABLE callback_attempts (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            callback_id bigint NOT NULL,
            attempt integer NOT NULL,
            worker text NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL DEFAULT now(),
            outcome text NOT NULL
                CHECK (outcome IN ('done', 'rejected', 'retry', 'dead', 'released', 'lease_lost')),
            reason text,
            error text
        );
        CREATE INDEX callback_attempts_callback_id_idx ON callback_attempts (callback_id);
        -- finished_at only grows, so a BRIN index serves "the last minute" almost for free.
        CREATE INDEX callback_attempts_finished_at_idx ON callback_attempts USING brin (finished_at);

        CREATE VIEW callbacks AS
            SELECT p.id, p.channel, p.kind, p.received_at, p.source_ip, p.method, p.path, p.query,
                   p.headers, p.body, j.state, j.attempts, j.next_attempt_at, j.locked_by,
                   j.locked_until, j.last_error, j.reason, j.out_trade_no, j.channel_trade_no,
                   p.peer_ip, j.updated_at
            FROM callback_payloads p
            JOIN callback_jobs j ON j.callback_id = p.id;
        """

    static let orders = """
        CREATE TABLE orders (
            out_trade_no text PRIMARY KEY,
            channel text NOT NULL,
            channel_trade_no text,
            amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
            currency text NOT NULL DEFAULT 'CNY',
            status text NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'paid', 'closed')),
            created_at timestamptz NOT NULL DEFAULT now(),
            paid_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CHECK ((status = 'paid') = (paid_at IS NOT NULL))
        );
        CREATE UNIQUE INDEX orders_channel_channel_trade_no_idx
            ON orders (channel, channel_trade_no) WHERE channel_trade_no IS NOT NULL;
        CREATE INDEX orders_channel_trade_no_idx ON orders (channel_trade_no) WHERE channel_trade_no IS NOT NULL;
        CREATE INDEX orders_created_created_at_idx ON orders (created_at) WHERE status = 'created';

        CREATE TABLE order_events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            out_trade_no text NOT NULL REFERENCES orders (out_trade_no),
            callback_id bigint REFERENCES callback_payloads (id),
            source text NOT NULL CHECK (source IN ('callback', 'reconcile', 'admin')),
            kind text NOT NULL CHECK (kind IN ('transition', 'duplicate', 'conflict')),
            from_status text,
            to_status text,
            flagged boolean NOT NULL DEFAULT false,
            detail text,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX order_events_out_trade_no_idx ON order_events (out_trade_no);
        CREATE INDEX order_events_flagged_idx ON order_events (created_at) WHERE flagged;
        """

    // Reconciliation remembers when it last asked the channel about an order, so workers
    // on all hosts share one rate limit per order. An operator's replay of a dead callback
    // is logged as an attempt row of its own.
    static let workers = """
        ALTER TABLE orders ADD COLUMN reconciled_at timestamptz;
        ALTER TABLE callback_attempts DROP CONSTRAINT callback_attempts_outcome_check;
        ALTER TABLE callback_attempts ADD CONSTRAINT callback_attempts_outcome_check
            CHECK (outcome IN ('done', 'rejected', 'retry', 'dead', 'released', 'lease_lost', 'replayed'));
        """
}
