public import Postgres

/// The webhook deliveries: `webhook_endpoints` (state per configured endpoint),
/// `webhook_deliveries` (one leased queue row per event and endpoint) and
/// `webhook_attempts` (every attempt). Applied after the orders' outbox, which it fans out:
/// a statement trigger on `order_outbox` makes the deliveries in the apply's transaction.
public enum WebhookSchema {
    /// The `NOTIFY` channel that wakes delivery threads.
    public static let notifyChannel = "payhook_deliveries"

    public static let migrations: [SchemaMigration] = [
        SchemaMigration(id: "0006_webhooks", sql: webhooks),
    ]

    static let webhooks = """
        CREATE TABLE webhook_endpoints (
            id text PRIMARY KEY,
            url text NOT NULL,
            kinds text[] NOT NULL,
            -- false once the endpoint left the configuration: no new deliveries are made for it
            active boolean NOT NULL DEFAULT true,
            failing_since timestamptz,
            disabled_at timestamptz,
            disabled_reason text,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CHECK ((disabled_at IS NULL) = (disabled_reason IS NULL))
        );

        CREATE TABLE webhook_deliveries (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id text NOT NULL REFERENCES order_outbox (event_id),
            endpoint_id text NOT NULL REFERENCES webhook_endpoints (id),
            state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'processing', 'delivered', 'dead')),
            attempts int NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            locked_by text,
            locked_until timestamptz,
            last_status int,
            last_error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (event_id, endpoint_id),
            CHECK ((state = 'processing') = (locked_by IS NOT NULL))
        ) WITH (fillfactor = 80);
        CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at)
            WHERE state = 'pending';
        CREATE INDEX webhook_deliveries_expired_idx ON webhook_deliveries (locked_until) WHERE state = 'processing';
        CREATE INDEX webhook_deliveries_dead_idx ON webhook_deliveries (endpoint_id, updated_at) WHERE state = 'dead';

        CREATE TABLE webhook_attempts (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id),
            attempt int NOT NULL,
            worker text NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL DEFAULT now(),
            outcome text NOT NULL,
            status_code int,
            latency_ms int,
            response_excerpt text,
            error text
        );
        CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id);

        CREATE FUNCTION payhook_webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO webhook_deliveries (event_id, endpoint_id, next_attempt_at)
            SELECT n.event_id, e.id, now()
            FROM new_events AS n JOIN webhook_endpoints AS e ON e.active AND n.kind = ANY (e.kinds)
            ORDER BY n.id, e.id;
            IF FOUND THEN
                PERFORM pg_notify('\(notifyChannel)', '');
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER order_outbox_fan_out AFTER INSERT ON order_outbox
            REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION payhook_webhook_fan_out();
        """
}
