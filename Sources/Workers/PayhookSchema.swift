import CallbackQueue
import Orders
public import Postgres
import Webhooks

/// Every component's migrations, for `payhook migrate` and the tests: the queue first
/// (the orders' events reference its payloads), then the orders, then the webhook
/// deliveries (fanned out from the orders' outbox).
public enum PayhookSchema {
    public static let migrations: [SchemaMigration] = QueueSchema.migrations + OrderSchema.migrations
        + WebhookSchema.migrations

    @discardableResult
    public static func migrate(on connection: Connection) throws(PostgresError) -> [String] {
        try SchemaMigrations.apply(migrations, on: connection)
    }
}
