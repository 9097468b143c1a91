import ChannelClients
import Channels
import Foundation
import PayhookConfig
import PayhookCore
import Simulator
import Testing

/// `alipay_cert_mode: true` from payhook.yaml: the three certificate files read (errors
/// name the key and the file), and the loaded client querying the simulator over HTTP,
/// rotating through the download call.
@Suite struct AlipayCertificateConfigTests {
    let directory: String
    let channels: SimulatedChannels

    init() throws {
        directory = NSTemporaryDirectory() + "payhook-certmode-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var channels = sharedChannels
        let certificates = try SimulatedAlipayCertificates(appKey: channels.alipayAppKey, alipayKey: channels.alipayKey)
        channels.alipayCertificates = certificates
        self.channels = channels
        try write("app_cert.crt", certificates.appCertificatePEM)
        try write("alipay_cert.crt", certificates.alipayCertificatePEM)
        try write("alipay_root_cert.crt", certificates.rootBundlePEM)
        try write("app_private.pem", channels.alipayAppKey.pkcs8PEMRepresentation)
        try write("alipay_public.pem", channels.alipayKey.publicKey.pemRepresentation)
        try write("garbage.crt", "not a certificate\n")
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// One Alipay channel in certificate mode; `replace` swaps settings (nil value: leave it out).
    func yaml(gateway: String = "http://127.0.0.1:1/alipay/gateway.do", _ replace: [String: String?] = [:]) -> String {
        var settings: [(String, String?)] = [
            ("id", "alipay"), ("type", "alipay"), ("app_id", quoted(channels.alipayAppID)),
            ("seller_id", quoted(channels.alipaySellerID)), ("app_private_key_file", quoted(path("app_private.pem"))),
            ("alipay_cert_mode", "true"), ("app_cert_file", quoted(path("app_cert.crt"))),
            ("alipay_cert_file", quoted(path("alipay_cert.crt"))), ("alipay_root_cert_file", quoted(path("alipay_root_cert.crt"))),
            ("gateway_url", quoted(gateway)), ("insecure_http", "true"),
            // The suites beside this one fill both cores: the simulator may take seconds.
            ("query_timeout_ms", "15000"),
        ]
        for (key, value) in replace {
            if let index = settings.firstIndex(where: { $0.0 == key }) { settings[index].1 = value } else { settings.append((key, value)) }
        }
        let body = settings.compactMap { key, value in value.map { "\(key): \($0)" } }.joined(separator: ", ")
        return "database: {url: x}\nchannels: [{\(body)}]"
    }

    func quoted(_ text: String) -> String { "\"\(text)\"" }

    func configError(_ yaml: String) -> ConfigError? {
        do {
            _ = try PayhookConfiguration.parse(yaml: yaml).loadChannels()
            return nil
        } catch {
            return error
        }
    }

    @Test func certificateModeOverHTTPWithRotation() async throws {
        let simulator = ChannelSimulator(channels: channels)
        let server = try await ChannelSimulatorServer.start(simulator)
        simulator.setOrder(channel: SimulatedChannels.alipayID, paidOrder("CERT-HTTP-1", amount: 500))
        let configuration = try PayhookConfiguration.parse(yaml: yaml(gateway: server.baseURL + "/alipay/gateway.do"))
        let client = try configuration.channels[0].loadClient()
        guard case .alipay(let alipay) = client.adapter, let mode = alipay.configuration.certificateMode else {
            Issue.record("expected Alipay in certificate mode")
            return
        }
        let certificates = try #require(channels.alipayCertificates)
        #expect(mode.appCertSN == certificates.appCertSN)
        #expect(mode.rootCertSN == certificates.rootCertSN)
        #expect(found(try await client.queryOrder(outTradeNo: "CERT-HTTP-1"))?.amountMinor == 500)

        let rotated = try simulator.rotateAlipayCertificate(key: RSAPrivateKey.generate())
        #expect(found(try await client.queryOrder(outTradeNo: "CERT-HTTP-1"))?.status == .paid)
        #expect(Set(mode.knownSNs) == [mode.configuredSN, rotated])
        await server.stop()
    }

    /// `payhook sim channels --alipay-cert-mode`: the folder holds the certificates and
    /// payhook.yaml configures them; the loaded channel has the simulator's SNs.
    @Test func simulatorFolderConfiguresCertificateMode() throws {
        let folder = SimulatorDirectory(path: directory + "/sim")
        try folder.writeKeys(channels, baseURL: "http://127.0.0.1:4321")
        let file = try folder.writeConfiguration(
            channels, baseURL: "http://127.0.0.1:4321", options: .init(databaseURL: "postgres://x@127.0.0.1/x"))
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.contains("alipay_cert_mode: true") && !text.contains("alipay_public_key_file"))
        let loaded = try PayhookConfiguration.load(path: file, environment: [:]).loadChannels()
        guard case .alipay(let alipay)? = loaded.first(where: { $0.channelID == SimulatedChannels.alipayID }),
            let mode = alipay.certificateMode
        else {
            Issue.record("expected Alipay in certificate mode")
            return
        }
        #expect(mode.appCertSN == channels.alipayCertificates?.appCertSN)
        #expect(mode.rootCertSN == channels.alipayCertificates?.rootCertSN)
    }

    @Test func loadsAndFailsClosed() throws {
        #expect(configError(yaml()) == nil)
        for key in ["app_cert_file", "alipay_cert_file", "alipay_root_cert_file"] {
            // Missing file: exit 2 naming the key and the file.
            let missing = try #require(configError(yaml([key: quoted("/nonexistent/\(key).crt")])))
            #expect(missing.key == "channels[0].\(key)")
            #expect(missing.problem.contains("/nonexistent/\(key).crt") && missing.problem.contains("cannot be read"))
            // Unreadable as a certificate.
            let garbage = try #require(configError(yaml([key: quoted(path("garbage.crt"))])))
            #expect(garbage.key == "channels[0].\(key)")
            #expect(garbage.problem.contains("garbage.crt"))
            // Left out.
            let absent = try #require(configError(yaml([key: nil])))
            #expect(absent.key == "channels[0].\(key)")
            #expect(absent.problem.contains("alipay_cert_mode: true"))
            // A certificate file without certificate mode is a half-done switch.
            let noMode = try #require(configError(yaml(["alipay_cert_mode": nil, "alipay_public_key_file": quoted(path("alipay_public.pem"))])))
            #expect(noMode.key.hasPrefix("channels[0].") && noMode.problem.contains("needs alipay_cert_mode: true"))
        }
        // A root bundle of only unparsable or non-RSA certificates has no SN.
        try write("sm2_only.crt", try SimulatedAlipayCertificates.unparsableCertificatePEM())
        let noRSA = try #require(configError(yaml(["alipay_root_cert_file": quoted(path("sm2_only.crt"))])))
        #expect(noRSA.key == "channels[0].alipay_root_cert_file" && noRSA.problem.contains("no RSA-signed certificate"))
        // One source of Alipay's key, not two.
        let both = try #require(configError(yaml(["alipay_public_key_file": quoted(path("alipay_public.pem"))])))
        #expect(both.key == "channels[0].alipay_public_key_file")
        let notBool = try #require(configError(yaml(["alipay_cert_mode": "maybe"])))
        #expect(notBool.key == "channels[0].alipay_cert_mode")
        // Public-key mode still needs its key file.
        let keyMode = try #require(configError(yaml(["alipay_cert_mode": nil, "app_cert_file": nil, "alipay_cert_file": nil,
                                                     "alipay_root_cert_file": nil])))
        #expect(keyMode.key == "channels[0].alipay_public_key_file" && keyMode.problem == "is required")
    }
}
