public import Postgres

/// The site's orders: `orders` and `order_events`. Applied after the queue's schema
/// (`order_events.callback_id` references `callback_payloads`) by `SchemaMigrations`.
public enum OrderSchema {
    public static let migrations: [SchemaMigration] = [
        SchemaMigration(id: "0002_orders", sql: orders),
        SchemaMigration(id: "0003_orders_reconciled_at", sql: reconciledAt),
        SchemaMigration(id: "0005_order_outbox", sql: OrderOutbox.migration),
        SchemaMigration(id: "0007_site_orders", sql: SiteOrderStore.migration),
        SchemaMigration(id: "0009_order_refunds", sql: RefundStore.migration),
    ]

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
    // on all hosts share one rate limit per order. `IF NOT EXISTS`: databases migrated
    // before the orders owned their schema added it under the queue's `0003_workers`.
    static let reconciledAt = """
        ALTER TABLE orders ADD COLUMN IF NOT EXISTS reconciled_at timestamptz;
        """
}
