public import Foundation
public import Postgres

/// Per endpoint: its state and its deliveries, for `payhook status` and the gauges.
public struct DeliveryStatus: Sendable, Equatable {
    public struct Endpoint: Sendable, Equatable {
        public let id: String
        public let url: String
        public let active: Bool
        public let disabledReason: String?
        public let disabledAt: Date?
        public let failingSince: Date?
        public let pending: Int64
        public let processing: Int64
        public let dead: Int64
        /// Age of the oldest delivery not yet delivered (pending or processing).
        public let oldestUndeliveredSeconds: Double?
    }

    public let endpoints: [Endpoint]

    public static func read(on connection: Connection) throws(PostgresError) -> DeliveryStatus {
        // Per endpoint over the partial indexes (pending, processing, dead): never a scan of
        // the delivered rows, which only grow.
        let rows = try connection.query("""
            SELECT e.id, e.url, e.active, e.disabled_reason, e.disabled_at, e.failing_since,
                   (SELECT count(*) FROM webhook_deliveries AS d WHERE d.endpoint_id = e.id AND d.state = 'pending'),
                   (SELECT count(*) FROM webhook_deliveries AS d WHERE d.state = 'processing' AND d.endpoint_id = e.id),
                   (SELECT count(*) FROM webhook_deliveries AS d WHERE d.endpoint_id = e.id AND d.state = 'dead'),
                   extract(epoch FROM now() - least(
                       (SELECT min(d.created_at) FROM webhook_deliveries AS d WHERE d.endpoint_id = e.id AND d.state = 'pending'),
                       (SELECT min(d.created_at) FROM webhook_deliveries AS d WHERE d.state = 'processing' AND d.endpoint_id = e.id)
                   ))::float8
            FROM webhook_endpoints AS e ORDER BY e.id
            """).rows
        return DeliveryStatus(endpoints: try rows.map { row throws(PostgresError) in
            Endpoint(id: try row.decode(0), url: try row.decode(1), active: try row.decode(2),
                     disabledReason: try row.decode(3), disabledAt: try row.decode(4), failingSince: try row.decode(5),
                     pending: try row.decode(6), processing: try row.decode(7), dead: try row.decode(8),
                     oldestUndeliveredSeconds: try row.decode(9))
        })
    }
}
