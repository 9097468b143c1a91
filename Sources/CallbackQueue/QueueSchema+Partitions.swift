extension QueueSchema {
    // The queue's three tables partitioned by received time (the callback's, for attempts),
    // so retention drops whole partitions instead of deleting rows from the hot tables.
    //
    // The upgrade in place: one transaction takes the old tables (inserts and claims wait for
    // it; a receiver answers 503 once commit_timeout_ms passes, so nothing acknowledged is
    // lost), copies every row, whatever its state or lease, into one partition that covers all
    // that was received before, and drops the old tables. The pause grows with the rows
    // (measured in docs/architecture.md). Processes of earlier versions must be stopped first:
    // their statements do not name the partition key.
    //
    // A `_default` partition per table catches what no range holds: rows that arrive before
    // the maintainer made their partition (an insert never fails for want of one; the next
    // partition made over their range takes them out of it) and the unfinished and dead
    // callbacks that retention carries out of a partition it drops.
    static let partitions = """
        LOCK TABLE callback_payloads, callback_jobs, callback_attempts IN ACCESS EXCLUSIVE MODE;
        DROP VIEW callbacks;
        -- Orders and their events outlive the callbacks retention drops.
        ALTER TABLE IF EXISTS order_events DROP CONSTRAINT IF EXISTS order_events_callback_id_fkey;
        ALTER TABLE callback_payloads RENAME TO callback_payloads_unpartitioned;
        ALTER TABLE callback_jobs RENAME TO callback_jobs_unpartitioned;
        ALTER TABLE callback_attempts RENAME TO callback_attempts_unpartitioned;
        ALTER SEQUENCE callback_payloads_id_seq RENAME TO callback_payloads_unpartitioned_id_seq;
        ALTER SEQUENCE callback_attempts_id_seq RENAME TO callback_attempts_unpartitioned_id_seq;

        CREATE TABLE callback_payloads (
            id bigint GENERATED ALWAYS AS IDENTITY,
            channel text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('notify', 'return')),
            received_at timestamptz NOT NULL,
            source_ip inet,
            peer_ip inet,
            method text NOT NULL,
            path text NOT NULL,
            query text NOT NULL DEFAULT '',
            header_names text[] NOT NULL,
            header_values bytea[] NOT NULL,
            body bytea NOT NULL,
            CONSTRAINT callback_payloads_headers_check CHECK (cardinality(header_names) = cardinality(header_values))
        ) PARTITION BY RANGE (received_at);

        CREATE TABLE callback_jobs (
            callback_id bigint NOT NULL,
            received_at timestamptz NOT NULL,
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
            CONSTRAINT callback_jobs_lease_check
                CHECK ((state = 'processing') = (locked_by IS NOT NULL AND locked_until IS NOT NULL))
        ) PARTITION BY RANGE (received_at);

        CREATE TABLE callback_attempts (
            id bigint GENERATED ALWAYS AS IDENTITY,
            callback_id bigint NOT NULL,
            callback_received_at timestamptz NOT NULL,
            attempt integer NOT NULL,
            worker text NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL DEFAULT now(),
            outcome text NOT NULL CHECK (outcome IN
                ('done', 'rejected', 'retry', 'dead', 'released', 'lease_lost', 'replayed')),
            reason text,
            error text
        ) PARTITION BY RANGE (callback_received_at);

        -- The storage settings of every partition, one place. callback_jobs rows are rewritten
        -- twice per callback (claim, finish): room on the page keeps those updates HOT (no
        -- index writes), and vacuum runs after 2 % dead rows, unthrottled, so the partial
        -- indexes the claim reads stay small. The other two are insert-only: vacuum them
        -- for the visibility map only, after 20 % new rows.
        CREATE FUNCTION payhook_queue_storage(parent text) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$
            SELECT CASE parent
                WHEN 'callback_jobs' THEN 'fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, '
                    || 'autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.02, '
                    || 'autovacuum_vacuum_cost_delay = 0'
                ELSE 'autovacuum_vacuum_insert_scale_factor = 0.2, autovacuum_vacuum_cost_delay = 0'
            END
        $$;

        -- The partition key of each table.
        CREATE FUNCTION payhook_queue_key(parent text) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$
            SELECT CASE parent WHEN 'callback_attempts' THEN 'callback_received_at' ELSE 'received_at' END
        $$;

        -- Makes the partitions of [lower_bound, upper_bound) for all three tables, moving in the
        -- rows the default partitions hold for that range. Writes to the queue wait the few
        -- milliseconds this takes: an insert routed to the default partition while a range is
        -- attached would fail its partition check. Only the three parents are locked (ONLY),
        -- at once; autovacuum on the partitions never stands in the way. False when the range
        -- is there already.
        CREATE FUNCTION payhook_queue_add_partition(lower_bound timestamptz, upper_bound timestamptz) RETURNS boolean
        LANGUAGE plpgsql AS $$
        DECLARE
            suffix text := '_p' || to_char(lower_bound AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS');
            parent text;
        BEGIN
            IF to_regclass('callback_jobs' || suffix) IS NOT NULL THEN
                RETURN false;
            END IF;
            LOCK TABLE ONLY callback_payloads, ONLY callback_jobs, ONLY callback_attempts IN SHARE ROW EXCLUSIVE MODE;
            FOREACH parent IN ARRAY ARRAY['callback_payloads', 'callback_jobs', 'callback_attempts'] LOOP
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (%s)',
                               parent || suffix, parent, payhook_queue_storage(parent));
                EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                               'INSERT INTO %I SELECT * FROM moved',
                               parent || '_default', payhook_queue_key(parent), payhook_queue_key(parent),
                               parent || suffix) USING lower_bound, upper_bound;
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               parent, parent || suffix, lower_bound, upper_bound);
            END LOOP;
            RETURN true;
        END
        $$;

        -- Drops the partitions named by suffix (`_p20261202t000000`) from all three tables.
        -- Every callback in them that is not finished (pending, processing, dead), payload,
        -- job and attempts, is first carried into the default partitions, whole and with its
        -- lease: the parents are locked, so no statement sees it between the two, and a worker
        -- holding its lease finds it by the same key afterwards. Only the parents are locked
        -- (ONLY): autovacuum, which works on the partitions, never stands in the way. Returns
        -- the callbacks carried.
        CREATE FUNCTION payhook_queue_drop_partition(suffix text) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            parent text;
            carried bigint;
            kept text := 'state NOT IN (''done'', ''rejected'')';
        BEGIN
            LOCK TABLE ONLY callback_payloads, ONLY callback_jobs, ONLY callback_attempts IN ACCESS EXCLUSIVE MODE;
            FOREACH parent IN ARRAY ARRAY['callback_jobs', 'callback_payloads', 'callback_attempts'] LOOP
                EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, parent || suffix);
            END LOOP;
            EXECUTE format('INSERT INTO callback_payloads OVERRIDING SYSTEM VALUE SELECT p.* FROM %I p '
                           'WHERE p.id IN (SELECT callback_id FROM %I WHERE %s)',
                           'callback_payloads' || suffix, 'callback_jobs' || suffix, kept);
            GET DIAGNOSTICS carried = ROW_COUNT;
            EXECUTE format('INSERT INTO callback_jobs SELECT * FROM %I WHERE %s', 'callback_jobs' || suffix, kept);
            EXECUTE format('INSERT INTO callback_attempts OVERRIDING SYSTEM VALUE SELECT a.* FROM %I a '
                           'WHERE a.callback_id IN (SELECT callback_id FROM %I WHERE %s)',
                           'callback_attempts' || suffix, 'callback_jobs' || suffix, kept);
            EXECUTE format('DROP TABLE %I, %I, %I', 'callback_payloads' || suffix, 'callback_jobs' || suffix,
                           'callback_attempts' || suffix);
            RETURN carried;
        END
        $$;

        DO $$
        DECLARE
            parent text;
        BEGIN
            FOREACH parent IN ARRAY ARRAY['callback_payloads', 'callback_jobs', 'callback_attempts'] LOOP
                EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT WITH (%s)',
                               parent || '_default', parent, payhook_queue_storage(parent));
            END LOOP;
        END
        $$;

        -- Everything received so far goes into one partition, ending now; the maintainer
        -- makes the next ones from there.
        SELECT payhook_queue_add_partition(date_trunc('day', min(received_at)), date_trunc('second', now()) + interval '1 second')
        FROM callback_payloads_unpartitioned HAVING count(*) > 0;

        INSERT INTO callback_payloads (id, channel, kind, received_at, source_ip, peer_ip, method, path, query,
                                       header_names, header_values, body)
            OVERRIDING SYSTEM VALUE
            SELECT id, channel, kind, received_at, source_ip, peer_ip, method, path, query, header_names, header_values, body
            FROM callback_payloads_unpartitioned;
        INSERT INTO callback_jobs (callback_id, received_at, channel, state, attempts, next_attempt_at, locked_by,
                                   locked_until, last_error, reason, out_trade_no, channel_trade_no, updated_at)
            SELECT j.callback_id, coalesce(p.received_at, j.updated_at), j.channel, j.state, j.attempts, j.next_attempt_at,
                   j.locked_by, j.locked_until, j.last_error, j.reason, j.out_trade_no, j.channel_trade_no, j.updated_at
            FROM callback_jobs_unpartitioned j LEFT JOIN callback_payloads_unpartitioned p ON p.id = j.callback_id;
        INSERT INTO callback_attempts (id, callback_id, callback_received_at, attempt, worker, started_at, finished_at,
                                       outcome, reason, error)
            OVERRIDING SYSTEM VALUE
            SELECT a.id, a.callback_id, coalesce(p.received_at, a.started_at), a.attempt, a.worker, a.started_at,
                   a.finished_at, a.outcome, a.reason, a.error
            FROM callback_attempts_unpartitioned a LEFT JOIN callback_payloads_unpartitioned p ON p.id = a.callback_id;
        -- Identities continue after the old ones (never reused, even for rolled-back inserts).
        SELECT setval(pg_get_serial_sequence('callback_payloads', 'id'), last_value, is_called)
        FROM callback_payloads_unpartitioned_id_seq;
        SELECT setval(pg_get_serial_sequence('callback_attempts', 'id'), last_value, is_called)
        FROM callback_attempts_unpartitioned_id_seq;
        DROP TABLE callback_payloads_unpartitioned, callback_jobs_unpartitioned, callback_attempts_unpartitioned;

        -- Keys carry the partition key; the workers look rows up by both.
        ALTER TABLE callback_payloads ADD PRIMARY KEY (id, received_at);
        ALTER TABLE callback_jobs ADD PRIMARY KEY (callback_id, received_at);
        ALTER TABLE callback_attempts ADD PRIMARY KEY (id, callback_received_at);
        -- The claim reads due rows through these partial indexes; a finished row leaves them.
        CREATE INDEX callback_jobs_pending_next_attempt_at_idx
            ON callback_jobs (next_attempt_at) WHERE state = 'pending';
        CREATE INDEX callback_jobs_processing_locked_until_idx
            ON callback_jobs (locked_until) WHERE state = 'processing';
        CREATE INDEX callback_jobs_dead_idx ON callback_jobs (callback_id) WHERE state = 'dead';
        CREATE INDEX callback_jobs_out_trade_no_idx ON callback_jobs (out_trade_no) WHERE out_trade_no IS NOT NULL;
        CREATE INDEX callback_attempts_callback_id_idx ON callback_attempts (callback_id);
        -- finished_at only grows, so a BRIN index serves "the last minute" almost for free.
        CREATE INDEX callback_attempts_finished_at_idx ON callback_attempts USING brin (finished_at);

        CREATE VIEW callbacks AS
            SELECT p.id, p.channel, p.kind, p.received_at, p.source_ip, p.method, p.path, p.query,
                   (SELECT coalesce(json_agg(json_build_array(h.name, payhook_header_text(h.value)) ORDER BY h.i),
                                    '[]'::json)
                    FROM unnest(p.header_names, p.header_values) WITH ORDINALITY AS h(name, value, i)) AS headers,
                   p.body, j.state, j.attempts, j.next_attempt_at, j.locked_by,
                   j.locked_until, j.last_error, j.reason, j.out_trade_no, j.channel_trade_no,
                   p.peer_ip, j.updated_at, p.header_names, p.header_values
            FROM callback_payloads p
            JOIN callback_jobs j ON j.callback_id = p.id AND j.received_at = p.received_at;

        -- The queue's partitions with their ranges and sizes (a default partition has no range).
        CREATE VIEW queue_partitions AS
            SELECT parent.relname::text AS parent, child.relname::text AS partition,
                   btrim(bound[1], '''')::timestamptz AS lower_bound,
                   btrim(bound[2], '''')::timestamptz AS upper_bound,
                   bound IS NULL AS is_default,
                   pg_total_relation_size(child.oid) AS total_bytes,
                   pg_indexes_size(child.oid) AS index_bytes,
                   -- PostgreSQL's estimate from the last vacuum or analyze; NULL before the first.
                   CASE WHEN child.reltuples >= 0 THEN child.reltuples::bigint END AS estimated_rows
            FROM pg_inherits i
            JOIN pg_class parent ON parent.oid = i.inhparent
            JOIN pg_class child ON child.oid = i.inhrelid
            CROSS JOIN LATERAL regexp_match(pg_get_expr(child.relpartbound, child.oid), 'FROM \\((.*)\\) TO \\((.*)\\)') AS bound
            WHERE i.inhparent IN ('callback_payloads'::regclass, 'callback_jobs'::regclass, 'callback_attempts'::regclass);

        -- The maintainer's last run, for `payhook status` and the metrics.
        CREATE TABLE queue_maintenance (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            ran_at timestamptz NOT NULL,
            partitions_created integer NOT NULL,
            partitions_dropped integer NOT NULL,
            callbacks_carried bigint NOT NULL,
            default_pruned bigint NOT NULL,
            held_partitions integer NOT NULL,
            held_callbacks bigint NOT NULL,
            error text
        );
        """
}
