import CallbackQueue
import Channels
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


    /// Throwaway key files for the configured channels: `payhook serve` loads them (it
    /// verifies browser returns and signs orders for the site API), so they must read.
    static let keyFiles: (privateKey: String, publicKey: String, secret: String) = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-receiver-keys-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let key = RSAPrivateKey.generate()
        let files = (directory.appendingPathComponent("private.pem").path, directory.appendingPathComponent("public.pem").path,
                     directory.appendingPathComponent("secret").path)
        try! key.pkcs8PEMRepresentation.write(toFile: files.0, atomically: true, encoding: .utf8)
        try! key.publicKey.pemRepresentation.write(toFile: files.1, atomically: true, encoding: .utf8)
        try! String(repeating: "k", count: 32).write(toFile: files.2, atomically: true, encoding: .utf8)
        return files
    }()

    /// `allowedIPs` go to every channel; `receiverSettings` are more `receiver:` lines.
    static func yaml(databaseURL: String, port: Int = 0, trustedProxies: [String] = [], maxBodyBytes: Int = 4096,
                     allowedIPs: [String] = [], receiverSettings: [String] = []) -> String {
        let (privateKey, publicKey, secret) = keyFiles
        let allowlist = "[\(allowedIPs.map { "\"\($0)\"" }.joined(separator: ", "))]"
        let more = receiverSettings.map { "\n  \($0)" }.joined()
        return """
        database: {url: "\(databaseURL)"}
        receiver:
          listen: 127.0.0.1:\(port)
          max_body_bytes: \(maxBodyBytes)
          trusted_proxies: [\(trustedProxies.map { "\"\($0)\"" }.joined(separator: ", "))]
          commit_timeout_ms: 1000
          read_timeout_seconds: 2\(more)
        channels:
          - {id: alipay, type: alipay, app_id: "2021", alipay_public_key_file: \(publicKey), app_private_key_file: \(privateKey),
             gateway_url: "https://127.0.0.1:1", allowed_ips: \(allowlist)}
          - {id: wechatpay, type: wechatpay_v3, mchid: "1900", appid: wx, apiv3_key_file: \(secret), merchant_private_key_file: \(privateKey),
             merchant_serial_no: "01", api_base_url: "https://127.0.0.1:1", platform_public_key_files: {PUB_KEY_ID_1: \(publicKey)},
             allowed_ips: \(allowlist)}
          - {id: points, type: points, partner_id: site, hmac_secret_file: \(secret), api_base_url: "https://127.0.0.1:1",
             allowed_ips: \(allowlist)}
        """
    }

    /// `logger` is the receiver's and the enqueuer's.
    init(database: TestDatabase? = nil, databaseURL: String? = nil, trustedProxies: [String] = [],
         maxBodyBytes: Int = 4096, allowedIPs: [String] = [], receiverSettings: [String] = [],
         logger: Logger = Logger(label: "test")) throws {
        let database = try database ?? TestDatabase.create()
        self.database = database
        let url = databaseURL ?? database.url
        let configuration = try PayhookConfiguration.parse(
            yaml: Self.yaml(databaseURL: url, trustedProxies: trustedProxies, maxBodyBytes: maxBodyBytes,
                            allowedIPs: allowedIPs, receiverSettings: receiverSettings))
        var settings = Enqueuer.Configuration(connection: .init(conninfo: url))
        settings.commitTimeout = .seconds(1)
        settings.connection.connectTimeoutSeconds = 1
        enqueuer = Enqueuer(configuration: settings, logger: logger)
        enqueuer.start()
        readiness = Readiness(connection: .init(conninfo: url))
        registry = PrometheusCollectorRegistry()
        receiver = Receiver(
            configuration: configuration.receiver, enqueuer: enqueuer, readiness: readiness, returns: nil,
            registry: registry, metrics: ReceiverMetrics(factory: PrometheusMetricsFactory(registry: registry)),
            logger: logger)
    }

    /// The application as `payhook serve` runs it (idle timeout included), on port 0.
    func application() throws -> some ApplicationProtocol {
        try receiver.buildApplication()
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
