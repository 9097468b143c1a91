import CallbackQueue
import Foundation
import Hummingbird
import Logging
import PayhookConfig
import PayhookCore
import Postgres
import PostgresTestSupport
import Prometheus
import Receiver

/// A receiver wired to a real enqueuer and a migrated test database.
struct ReceiverHarness {
    let database: TestDatabase
    let receiver: Receiver
    let enqueuer: Enqueuer
    let readiness: Readiness
    let registry: PrometheusCollectorRegistry


    static func yaml(databaseURL: String, port: Int = 0, trustedProxies: [String] = [], maxBodyBytes: Int = 4096) -> String {
        """
        database: {url: "\(databaseURL)"}
        receiver:
          listen: 127.0.0.1:\(port)
          max_body_bytes: \(maxBodyBytes)
          trusted_proxies: [\(trustedProxies.map { "\"\($0)\"" }.joined(separator: ", "))]
          commit_timeout_ms: 1000
          read_timeout_seconds: 2
        channels:
          - {id: alipay, type: alipay, app_id: "2021", alipay_public_key_file: k, app_private_key_file: k, gateway_url: "http://127.0.0.1:1"}
          - {id: wechatpay, type: wechatpay_v3, mchid: "1900", appid: wx, apiv3_key_file: k, merchant_private_key_file: k,
             merchant_serial_no: "01", api_base_url: "http://127.0.0.1:1", platform_public_key_files: {PUB_KEY_ID_1: k}}
          - {id: points, type: points, partner_id: site, hmac_secret_file: k, api_base_url: "http://127.0.0.1:1"}
        """
    }

    init(database: TestDatabase? = nil, databaseURL: String? = nil, trustedProxies: [String] = [],
         maxBodyBytes: Int = 4096) throws {
        let database = try database ?? TestDatabase.create()
        self.database = database
        let url = databaseURL ?? database.url
        let configuration = try PayhookConfiguration.parse(
            yaml: Self.yaml(databaseURL: url, trustedProxies: trustedProxies, maxBodyBytes: maxBodyBytes))
        var settings = Enqueuer.Configuration(connection: .init(conninfo: url))
        settings.commitTimeout = .seconds(1)
        settings.connection.connectTimeoutSeconds = 1
        enqueuer = Enqueuer(configuration: settings, logger: Logger(label: "test"))
        enqueuer.start()
        readiness = Readiness(connection: .init(conninfo: url))
        registry = PrometheusCollectorRegistry()
        receiver = Receiver(
            configuration: configuration.receiver, enqueuer: enqueuer, readiness: readiness, returns: nil,
            registry: registry, metrics: ReceiverMetrics(factory: PrometheusMetricsFactory(registry: registry)),
            logger: Logger(label: "test"))
    }

    /// The application as `payhook serve` runs it (idle timeout included), on port 0.
    func application() -> some ApplicationProtocol {
        receiver.buildApplication()
    }

    /// Rows in the queue, with what tests compare.
    /// Headers as stored: names, and values as their bytes.
    func storedRows() throws -> [(id: Int64, kind: String, sourceIP: String?, path: String, query: String,
                                  headers: [HeaderField], body: [UInt8])] {
        try database.connect().query("""
            SELECT id, kind, host(source_ip), path, query, header_names, header_values, body FROM callbacks ORDER BY id
            """).rows.map { row throws(PostgresError) in
            let headers = zip(try row.textArray(5), try row.byteaArray(6)).map { HeaderField(name: $0, bytes: $1) }
            return (try row.decode(0), try row.decode(1), try row.decode(2), try row.decode(3), try row.decode(4),
                    headers, try row.decode(7))
        }
    }
}
