import Foundation
import Orders
import Postgres
import PostgresTestSupport
import Testing
import Webhooks

/// Retention on the webhook side against a real PostgreSQL: old events whose every delivery
/// was delivered go with those deliveries and attempts; an old event with a delivery dead
/// or pending stays, as does every recent one, every order and every order event.
@Suite struct DeliveryRetentionTests {
    @Test func onlyOldFullyDeliveredEventsGo() throws {
        let database = try TestDatabase.create()
        let connection = try database.connect()
        // An event from before any endpoint existed: it has no delivery at all.
        let noDelivery = try DeliveryTests.pay("RT-0", on: connection)
        try DeliveryStore.syncEndpoints([try DeliveryTests.endpoint("site", port: 1)], on: connection)
        let delivered = try DeliveryTests.pay("RT-1", on: connection)
        let dead = try DeliveryTests.pay("RT-2", on: connection)
        let pending = try DeliveryTests.pay("RT-3", on: connection)
        let recent = try DeliveryTests.pay("RT-4", on: connection)
        try connection.query("UPDATE webhook_deliveries SET state = 'delivered', delivered_at = now() WHERE event_id = ANY ($1)",
                             [.textArray([delivered, recent])])
        try connection.query("UPDATE webhook_deliveries SET state = 'dead' WHERE event_id = $1", [.text(dead)])
        try connection.query("""
            INSERT INTO webhook_attempts (delivery_id, attempt, worker, started_at, outcome, status_code)
            SELECT d.id, n, 'test', now(), 'failed', 500 FROM webhook_deliveries AS d, generate_series(1, 2) AS n
            WHERE d.event_id = ANY ($1)
            """, [.textArray([delivered, dead])])
        try connection.query("UPDATE order_outbox SET created_at = now() - interval '8 days' WHERE event_id = ANY ($1)",
                             [.textArray([noDelivery, delivered, dead, pending])])
        let eventsBefore: Int = try connection.query("SELECT count(*)::int FROM order_events")[0].decode(0)

        var settings = DeliveryRetention.Settings()
        settings.pageSize = 2  // several pages
        let retention = DeliveryRetention(settings: settings)
        let report = try #require(try retention.run(on: connection))
        #expect(report == DeliveryRetention.Report(events: 2, deliveries: 1, attempts: 2, kept: 2))

        let outbox: [String] = try connection.query("SELECT event_id FROM order_outbox ORDER BY id").rows
            .map { row throws(PostgresError) in try row.decode(0) }
        #expect(outbox == [dead, pending, recent])
        let states: [String] = try connection.query("SELECT state FROM webhook_deliveries ORDER BY id").rows
            .map { row throws(PostgresError) in try row.decode(0) }
        #expect(states == ["dead", "pending", "delivered"])
        let attempts: Int = try connection.query("SELECT count(*)::int FROM webhook_attempts")[0].decode(0)
        #expect(attempts == 2, "the dead delivery's attempts stay")
        #expect(try connection.query("SELECT count(*)::int FROM orders")[0].decode(0, as: Int.self) == 5)
        #expect(try connection.query("SELECT count(*)::int FROM order_events")[0].decode(0, as: Int.self) == eventsBefore)

        // A second run has nothing more to remove; the dead and pending ones are still kept.
        #expect(try retention.run(on: connection) == DeliveryRetention.Report(kept: 2))

        // Another process holding the lock: this one does nothing.
        let other = try database.connect()
        try other.query("SELECT pg_advisory_lock($1)", [.int64(0x7061_7968_6F6F_6B02)])
        #expect(try retention.run(on: connection) == nil)
    }
}
