import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Postgres
import PostgresTestSupport
import Simulator
import Testing

/// `receiver.tls` and `api.tls`: `payhook serve` terminates TLS on both listeners and a
/// real TLS client stores a callback and reaches the site API; plain HTTP and TLS 1.1 get
/// nothing. A key file other users can read, a missing certificate, a key that is not the
/// certificate's: exit 2 naming the key, before anything listens.
@Suite(.timeLimit(.minutes(3))) struct ListenerTLSTests {
    /// A folder with a server certificate for loopback, its key (mode 0600), the admin
    /// token, a points secret, and `payhook.yaml` naming them.
    struct Setup {
        let folder: String
        let tls: SimulatorTLS
        let receiverPort: Int
        let apiPort: Int
        var configFile: String { folder + "/payhook.yaml" }
        var keyFile: String { folder + "/server.key" }
        var certFile: String { folder + "/server.pem" }
        let token = "tls-test-token-0123456789"

        /// `apiKeyMode`: the mode of the site API's key file (default 0600).
        init(databaseURL: String, apiKeyMode: Int? = nil) throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-ltls-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            tls = try SimulatorTLS.generate()
            receiverPort = try freeLoopbackPort()
            apiPort = try freeLoopbackPort()
            try write(tls.serverCertificatePEM, to: certFile, mode: 0o644)
            try write(tls.serverPrivateKeyPEM, to: keyFile, mode: 0o600)
            try write(token, to: folder + "/admin.token", mode: 0o600)
            // The site API has copies of its own, so each listener's files can be broken apart.
            try write(tls.serverCertificatePEM, to: folder + "/api.pem", mode: 0o644)
            try write(tls.serverPrivateKeyPEM, to: folder + "/api.key", mode: apiKeyMode ?? 0o600)
            try write("points-secret-for-the-tls-test", to: folder + "/points.secret", mode: 0o600)
            try """
                database: {url: "\(databaseURL)"}
                receiver: {listen: "127.0.0.1:\(receiverPort)", tls: {cert_file: \(certFile), key_file: \(keyFile)}}
                api: {listen: "127.0.0.1:\(apiPort)", tls: {cert_file: \(folder)/api.pem, key_file: \(folder)/api.key}}
                site: {public_base_url: "https://pay.example.com"}
                admin: {token_file: \(folder)/admin.token}
                channels: [{id: p, type: points, partner_id: p, hmac_secret_file: \(folder)/points.secret, api_base_url: "https://p.example"}]
                """.write(toFile: configFile, atomically: true, encoding: .utf8)
        }

        func write(_ text: String, to path: String, mode: Int) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        }

        func remove() { try? FileManager.default.removeItem(atPath: folder) }

        /// A client that trusts only the test's CA, optionally capped at a TLS version.
        func client(maximumTLS: TLSVersion? = nil) throws -> HTTPClient {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(tls.caCertificatePEM.utf8)))
            if let maximumTLS {
                configuration.minimumTLSVersion = .tlsv1
                configuration.maximumTLSVersion = maximumTLS
            }
            return HTTPClient(eventLoopGroupProvider: .singleton,
                              configuration: .init(tlsConfiguration: configuration, timeout: .init(connect: .seconds(5), read: .seconds(10))))
        }
    }

    @Test func bothListenersServeTLSAndRefuseWhatIsNotTLS12() async throws {
        let database = try TestDatabase.create()
        let setup = try Setup(databaseURL: database.url)
        defer { setup.remove() }
        let serve = try ChildProcess(executable: ChildProcess.payhookExecutable, arguments: ["serve", "--config", setup.configFile],
                                     environment: [:], outputFile: setup.folder + "/serve.log")
        defer {
            serve.signal(SIGTERM)
            serve.wait()
        }
        let client = try setup.client()
        let receiver = "https://127.0.0.1:\(setup.receiverPort)"
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if let health = try? await client.execute(HTTPClientRequest(url: receiver + "/healthz"), timeout: .seconds(5)),
               health.status == .ok { break }
            guard ContinuousClock.now < deadline else {
                Issue.record("serve never answered over TLS: \((try? String(contentsOfFile: setup.folder + "/serve.log", encoding: .utf8)) ?? "")")
                try await client.shutdown()
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }

        // A notify over TLS is stored and acknowledged.
        var notify = HTTPClientRequest(url: receiver + "/notify/p")
        notify.method = .POST
        notify.headers.add(name: "Content-Type", value: "application/json")
        notify.body = .bytes(ByteBuffer(string: #"{"event_id":"tls-1","out_trade_no":"TLS-L1"}"#))
        let acknowledged = try await client.execute(notify, timeout: .seconds(10))
        #expect(acknowledged.status.code < 300)
        let stored: Int = try database.connect().query("SELECT count(*)::int FROM callbacks WHERE channel = 'p'")[0].decode(0)
        #expect(stored == 1)

        // The site API over TLS: the token is checked, an unknown order is 404 JSON.
        var lookup = HTTPClientRequest(url: "https://127.0.0.1:\(setup.apiPort)/v1/orders/NO-SUCH")
        lookup.headers.add(name: "Authorization", value: "Bearer \(setup.token)")
        let found = try await client.execute(lookup, timeout: .seconds(10))
        #expect(found.status == .notFound)
        let body = String(buffer: try await found.body.collect(upTo: 65536))
        #expect(body.contains(#""code""#), "\(body)")

        // Plain HTTP to the TLS port gets no HTTP answer; neither does a TLS 1.1 client.
        let plain = HTTPClient(eventLoopGroupProvider: .singleton,
                               configuration: .init(timeout: .init(connect: .seconds(5), read: .seconds(5))))
        await #expect(throws: (any Error).self) {
            _ = try await plain.execute(HTTPClientRequest(url: "http://127.0.0.1:\(setup.receiverPort)/healthz"), timeout: .seconds(5))
        }
        let old = try setup.client(maximumTLS: .tlsv11)
        await #expect(throws: (any Error).self) {
            _ = try await old.execute(HTTPClientRequest(url: receiver + "/healthz"), timeout: .seconds(5))
        }
        await #expect(throws: (any Error).self) {
            _ = try await old.execute(lookup, timeout: .seconds(5))
        }
        // Nothing the refused clients sent was stored.
        let after: Int = try database.connect().query("SELECT count(*)::int FROM callbacks")[0].decode(0)
        #expect(after == 1)
        for each in [client, plain, old] { try await each.shutdown() }
    }

    /// A key root owns, readable by its group (a Kubernetes Secret with `fsGroup`), is accepted.
    @Test(.enabled(if: getuid() == 0, "only root can make a file root owns"))
    func aRootOwnedGroupReadableKeyIsAccepted() throws {
        let setup = try Setup(databaseURL: "postgres://nobody@127.0.0.1:1/none", apiKeyMode: 0o640)
        defer { setup.remove() }
        try FileManager.default.setAttributes([.posixPermissions: 0o440], ofItemAtPath: setup.keyFile)
        let log = setup.folder + "/serve.log"
        let serve = try ChildProcess(executable: ChildProcess.payhookExecutable, arguments: ["serve", "--config", setup.configFile],
                                     environment: [:], outputFile: log)
        defer {
            serve.signal(SIGTERM)
            serve.wait()
        }
        // Both listeners' files pass: it logs that the receiver listens (after the site API).
        let deadline = ContinuousClock.now + .seconds(30)
        var output = ""
        while ContinuousClock.now < deadline {
            output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if output.contains("receiver listening") || output.contains("config:") { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(output.contains("receiver listening"), "\(output)")
        #expect(!output.contains(".tls."), "\(output)")
    }

    enum BadFile: String, CaseIterable, Sendable {
        case keyReadableByOthers = "a key file other users can read"
        case missingCertificate = "a missing certificate file"
        case keyOfAnotherCertificate = "the key of another certificate"
        case apiKeyReadableByGroup = "an api.tls key file its group can read"
    }

    @Test(arguments: BadFile.allCases)
    func aBadTLSFileIsExitTwoNamingTheKey(_ bad: BadFile) throws {
        // An unreachable database: the start must stop before it connects.
        let unreachable = "postgres://nobody@127.0.0.1:1/none"
        var setup = try Setup(databaseURL: unreachable)
        let expectedKey: String
        switch bad {
        case .keyReadableByOthers:
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: setup.keyFile)
            expectedKey = "receiver.tls.key_file"
        case .missingCertificate:
            try FileManager.default.removeItem(atPath: setup.certFile)
            expectedKey = "receiver.tls.cert_file"
        case .keyOfAnotherCertificate:
            let other = try SimulatorTLS.generate()
            try setup.write(other.serverPrivateKeyPEM, to: setup.keyFile, mode: 0o600)
            expectedKey = "receiver.tls.key_file"
        case .apiKeyReadableByGroup:
            setup.remove()
            setup = try Setup(databaseURL: unreachable, apiKeyMode: 0o640)
            // Group read is allowed only when root owns the key (as PostgreSQL's rule).
            if getuid() == 0 { #expect(chown(setup.folder + "/api.key", 65534, 65534) == 0) }
            expectedKey = "api.tls.key_file"
        }
        defer { setup.remove() }
        let serve = try ChildProcess.payhook(["serve", "--config", setup.configFile])
        #expect(serve.status == 2, "\(bad.rawValue): \(serve.output)")
        #expect(serve.output.contains(expectedKey), "\(bad.rawValue): \(serve.output)")
        #expect(!serve.output.contains("PRIVATE KEY"), "no key material in the message")
    }
}
