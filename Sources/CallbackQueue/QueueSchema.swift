public import Postgres

/// The queue's schema: `callback_payloads`, `callback_jobs`, `callback_attempts` (partitioned
/// by received time since `0008`), the `callbacks` and `queue_partitions` views. Applied with
/// every other component's by `SchemaMigrations`.
public enum QueueSchema {
    public static let migrations: [SchemaMigration] = [
        SchemaMigration(id: "0001_callback_queue", sql: callbackQueue),
        SchemaMigration(id: "0003_workers", sql: replayedOutcome),
        SchemaMigration(id: "0004_header_arrays", sql: headerArrays),
        SchemaMigration(id: "0008_queue_partitions", sql: partitions),
    ]

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

    // An operator's replay of a dead callback is logged as an attempt row of its own.
    // (Applied databases ran this id together with `orders.reconciled_at`, which the
    // orders' schema now owns as `0003_orders_reconciled_at`.)
    static let replayedOutcome = """
        ALTER TABLE callback_attempts DROP CONSTRAINT callback_attempts_outcome_check;
        ALTER TABLE callback_attempts ADD CONSTRAINT callback_attempts_outcome_check
            CHECK (outcome IN ('done', 'rejected', 'retry', 'dead', 'released', 'lease_lost', 'replayed'));
        """

    // Headers as two arrays PostgreSQL reads itself, names as text and values as bytes, in
    // arrival order with repeats: no hand-written JSON on the way in or out. Existing rows
    // are converted in place from the `json` pairs (one rewrite of callback_payloads; stop
    // the receivers or expect their inserts to wait for it). The view keeps `headers` as
    // the same `[[name, value], ...]` JSON for operators' queries.
    static let headerArrays = """
        DROP VIEW callbacks;
        ALTER TABLE callback_payloads ADD COLUMN header_names text[], ADD COLUMN header_values bytea[];
        -- A damaged column (not an array of pairs) keeps a NULL element, which the workers
        -- read as a corrupt row, as they did the JSON.
        UPDATE callback_payloads SET
            header_names = CASE WHEN json_typeof(headers) = 'array'
                THEN ARRAY(SELECT pair ->> 0 FROM json_array_elements(headers) WITH ORDINALITY AS h(pair, i) ORDER BY i)
                ELSE ARRAY[NULL::text] END,
            header_values = CASE WHEN json_typeof(headers) = 'array'
                THEN ARRAY(SELECT convert_to(pair ->> 1, 'UTF8')
                           FROM json_array_elements(headers) WITH ORDINALITY AS h(pair, i) ORDER BY i)
                ELSE ARRAY[NULL::bytea] END;
        ALTER TABLE callback_payloads
            ALTER COLUMN header_names SET NOT NULL,
            ALTER COLUMN header_values SET NOT NULL,
            ADD CONSTRAINT callback_payloads_headers_check
                CHECK (cardinality(header_names) = cardinality(header_values)),
            DROP COLUMN headers;

        -- A value's text for the view: UTF-8 as it is, anything else with escapes, so one odd
        -- header never makes the whole view unreadable.
        CREATE FUNCTION payhook_header_text(value bytea) RETURNS text
        LANGUAGE plpgsql IMMUTABLE STRICT AS $$
        BEGIN
            RETURN convert_from(value, 'UTF8');
        EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
            RETURN encode(value, 'escape');
        END
        $$;

        CREATE VIEW callbacks AS
            SELECT p.id, p.channel, p.kind, p.received_at, p.source_ip, p.method, p.path, p.query,
                   (SELECT coalesce(json_agg(json_build_array(h.name, payhook_header_text(h.value)) ORDER BY h.i),
                                    '[]'::json)
                    FROM unnest(p.header_names, p.header_values) WITH ORDINALITY AS h(name, value, i)) AS headers,
                   p.body, j.state, j.attempts, j.next_attempt_at, j.locked_by,
                   j.locked_until, j.last_error, j.reason, j.out_trade_no, j.channel_trade_no,
                   p.peer_ip, j.updated_at, p.header_names, p.header_values
            FROM callback_payloads p
            JOIN callback_jobs j ON j.callback_id = p.id;
        """
}
