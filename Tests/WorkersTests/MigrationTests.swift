import CallbackQueue
import PayhookCore
import Workers
import Postgres
import PostgresTestSupport
import Testing

@Suite struct MigrationTests {
    @Test func secondRunIsANoOp() throws {
        let database = try TestDatabase.create(migrated: false)
        let connection = try database.connect()
        #expect(try PayhookSchema.migrate(on: connection) == PayhookSchema.migrations.map(\.id).sorted())
        #expect(try PayhookSchema.migrate(on: connection).isEmpty)
        #expect(try SchemaMigrations.applied(on: connection) == PayhookSchema.migrations.map(\.id).sorted())
    }

    @Test func concurrentRunsApplyEachMigrationOnce() async throws {
        let database = try TestDatabase.create(migrated: false)
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask { try PayhookSchema.migrate(on: try database.connect()) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.flatMap { $0 }.sorted() == PayhookSchema.migrations.map(\.id).sorted())
        let connection = try database.connect()
        #expect(try connection.query("SELECT count(*) FROM payhook_migrations")[0].decode(0, as: Int.self)
                == PayhookSchema.migrations.count)
    }

    /// A database migrated before the orders owned their schema ran `0003_workers` with
    /// `orders.reconciled_at` in it; the orders' own `0003_orders_reconciled_at` is then a no-op.
    @Test func aDatabaseFromBeforeTheSchemaSplitUpgrades() throws {
        let database = try TestDatabase.create(migrated: false)
        let connection = try database.connect()
        let before = PayhookSchema.migrations.filter { $0.id == "0001_callback_queue" || $0.id == "0002_orders" }
        try SchemaMigrations.apply(before, on: connection)
        let old0003 = SchemaMigration(id: "0003_workers", sql: """
            ALTER TABLE orders ADD COLUMN reconciled_at timestamptz;
            ALTER TABLE callback_attempts DROP CONSTRAINT callback_attempts_outcome_check;
            ALTER TABLE callback_attempts ADD CONSTRAINT callback_attempts_outcome_check
                CHECK (outcome IN ('done', 'rejected', 'retry', 'dead', 'released', 'lease_lost', 'replayed'));
            """)
        try SchemaMigrations.apply([old0003], on: connection)
        try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, reconciled_at) VALUES ('o', 'alipay', 1, now())")
        #expect(try PayhookSchema.migrate(on: connection)
                == ["0003_orders_reconciled_at", "0004_header_arrays", "0005_order_outbox", "0006_webhooks", "0007_site_orders", "0008_queue_partitions",
                    "0009_order_refunds"])
        #expect(try connection.query("SELECT count(*) FROM orders WHERE reconciled_at IS NOT NULL")[0].decode(0, as: Int.self) == 1)
    }

    @Test func statesAreConstrained() throws {
        let database = try TestDatabase.create()
        let connection = try database.connect()
        let id = try QueueStore.insert([RawCallback(channel: "alipay", sourceIP: "203.0.113.1")], on: connection)[0]
        do {
            try connection.query("UPDATE callback_jobs SET state = 'failed' WHERE callback_id = $1", [.int64(id)])
            Issue.record("the CHECK must refuse an unknown state")
        } catch {
            #expect(error.sqlState == "23514")
        }
        do {
            try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, status) VALUES ('o', 'alipay', 1, 'shipped')")
            Issue.record("the CHECK must refuse an unknown order status")
        } catch {
            #expect(error.sqlState == "23514")
        }
        // `refunded` is a status since refunds, and like `paid` it needs its paid time.
        do {
            try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, status) VALUES ('o', 'alipay', 1, 'refunded')")
            Issue.record("the CHECK must refuse a refunded order without paid_at")
        } catch {
            #expect(error.sqlState == "23514")
        }
        do {
            try connection.query("INSERT INTO orders (out_trade_no, channel, amount_minor, status, paid_at, refunded_minor) VALUES ('o', 'alipay', 1, 'paid', now(), 2)")
            Issue.record("the CHECK must refuse refunding more than the amount")
        } catch {
            #expect(error.sqlState == "23514")
        }
    }
}
