import Foundation
import Channels
import PayhookConfig
public import Webhooks

/// A folder that holds the simulator's generated keys and the `payhook.yaml` that points
/// Payhook at the simulator, so `payhook sim channels`, `payhook sim load` and `payhook run`
/// in separate processes share one set of keys:
///
/// ```
/// DIR/payhook.yaml           written by writeConfiguration
/// DIR/simulator.json         ids and the simulator's base URL
/// DIR/keys/*.pem, *.key, *.secret
/// DIR/ca.pem                 the simulator's CA certificate (`--tls`), the channels' `ca_file`
/// DIR/keys/sim_ca_private.pem  its private key, kept to issue the server certificate again
/// DIR/secrets/admin.token
/// DIR/site.json              the simulated site's webhook URL (`payhook sim site`)
/// DIR/secrets/site_webhook.secret
/// ```
/// Private keys and secrets are written with mode 0600.
public struct SimulatorDirectory: Sendable {
    public let path: String

    /// `path` is made absolute, so the paths written into `payhook.yaml` work from any folder.
    public init(path: String) {
        let url = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        self.path = url.standardizedFileURL.path
    }

    public var configurationFile: String { path + "/payhook.yaml" }
    public var manifestFile: String { path + "/simulator.json" }
    public var keysDirectory: String { path + "/keys" }
    public var adminTokenFile: String { path + "/secrets/admin.token" }
    public var siteFile: String { path + "/site.json" }
    public var siteSecretFile: String { path + "/secrets/site_webhook.secret" }
    /// The simulator's CA certificate, written by ``serverTLS()``.
    public var caFile: String { path + "/ca.pem" }
    var caPrivateKeyFile: String { keysDirectory + "/sim_ca_private.pem" }

    /// The certificates for `payhook sim channels --tls`: the CA kept in this folder (made
    /// and written the first time), and a new server certificate from it for the loopback
    /// names, so a Payhook started against an earlier run still trusts this one.
    public func serverTLS() throws -> SimulatorTLS {
        let files = FileManager.default
        if files.fileExists(atPath: caFile), files.fileExists(atPath: caPrivateKeyFile) {
            return try SimulatorTLS.issue(caCertificatePEM: try KeyFiles.readText(caFile),
                                          caPrivateKeyPEM: try KeyFiles.readText(caPrivateKeyFile))
        }
        let tls = try SimulatorTLS.generate()
        try writeCA(tls)
        return tls
    }

    /// Writes `tls`'s CA: its certificate to ``caFile``, its key (mode 0600) beside the keys.
    public func writeCA(_ tls: SimulatorTLS) throws {
        try FileManager.default.createDirectory(atPath: keysDirectory, withIntermediateDirectories: true)
        try write(tls.caPrivateKeyPEM, to: caPrivateKeyFile, secret: true)
        try write(tls.caCertificatePEM, to: caFile, secret: false)
    }

    /// The simulated site's webhook secret: made once (a random `whsec_` key), then kept.
    public func siteSigner() throws -> WebhookSigner {
        if !FileManager.default.fileExists(atPath: siteSecretFile) {
            try FileManager.default.createDirectory(atPath: path + "/secrets", withIntermediateDirectories: true)
            var key = [UInt8](repeating: 0, count: 32)
            var random = SystemRandomNumberGenerator()
            for index in key.indices { key[index] = random.next() }
            try write("whsec_" + Data(key).base64EncodedString() + "\n", to: siteSecretFile, secret: true)
        }
        return try WebhookSigner(secretFile: try KeyFiles.readText(siteSecretFile))
    }

    /// Records where the simulated site listens, for `payhook.yaml` and `payhook sim load`.
    public func writeSite(url: String) throws {
        try write(#"{"webhook_url": "\#(url)"}"# + "\n", to: siteFile, secret: false)
    }

    /// The simulated site's webhook URL, if `payhook sim site` runs for this folder.
    public var siteURL: String? {
        guard let data = FileManager.default.contents(atPath: siteFile),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: String] else { return nil }
        return object["webhook_url"]
    }

    // Merchant-side files (payhook.yaml names these) and channel-side files (only the simulator reads them).
    var alipayPublicKeyFile: String { keysDirectory + "/alipay_public.pem" }
    var alipayPrivateKeyFile: String { keysDirectory + "/alipay_private.pem" }
    var appPrivateKeyFile: String { keysDirectory + "/app_private.pem" }
    var wechatPlatformPublicKeyFile: String { keysDirectory + "/wechat_platform_public.pem" }
    var wechatPlatformPrivateKeyFile: String { keysDirectory + "/wechat_platform_private.pem" }
    var wechatMerchantPrivateKeyFile: String { keysDirectory + "/wechat_merchant_private.pem" }
    var wechatAPIv3KeyFile: String { keysDirectory + "/wechat_apiv3.key" }
    var pointsSecretFile: String { keysDirectory + "/points.secret" }
    // Certificate mode: rewritten at every start (the simulator's root key is not kept).
    var appCertFile: String { keysDirectory + "/appCertPublicKey.crt" }
    var alipayCertFile: String { keysDirectory + "/alipayCertPublicKey_RSA2.crt" }
    var alipayRootCertFile: String { keysDirectory + "/alipayRootCert.crt" }

    /// Whether keys were written here before.
    public var hasKeys: Bool { FileManager.default.fileExists(atPath: manifestFile) }

    /// What `simulator.json` records besides the keys.
    struct Manifest: Codable {
        var version = 1
        var baseURL: String
        var alipayAppID: String
        var alipaySellerID: String
        var wechatPlatformSerial: String
        var wechatMerchantSerialNo: String
        var wechatMchID: String
        var wechatAppID: String
        var pointsPartnerID: String

        enum CodingKeys: String, CodingKey {
            case version, baseURL = "base_url", alipayAppID = "alipay_app_id", alipaySellerID = "alipay_seller_id"
            case wechatPlatformSerial = "wechat_platform_serial", wechatMerchantSerialNo = "wechat_merchant_serial_no"
            case wechatMchID = "wechat_mchid", wechatAppID = "wechat_appid", pointsPartnerID = "points_partner_id"
        }
    }

    /// Writes every key, the admin token (kept if one exists) and `simulator.json` naming
    /// `baseURL`, where the simulator serves the channels' query APIs.
    public func writeKeys(_ channels: SimulatedChannels, baseURL: String) throws {
        let files = FileManager.default
        try files.createDirectory(atPath: keysDirectory, withIntermediateDirectories: true)
        try files.createDirectory(atPath: path + "/secrets", withIntermediateDirectories: true)
        try write(channels.alipayKey.publicKey.pemRepresentation, to: alipayPublicKeyFile, secret: false)
        try write(channels.alipayKey.pkcs8PEMRepresentation, to: alipayPrivateKeyFile, secret: true)
        try write(channels.alipayAppKey.pkcs8PEMRepresentation, to: appPrivateKeyFile, secret: true)
        try write(channels.wechatPlatformKey.publicKey.pemRepresentation, to: wechatPlatformPublicKeyFile, secret: false)
        try write(channels.wechatPlatformKey.pkcs8PEMRepresentation, to: wechatPlatformPrivateKeyFile, secret: true)
        try write(channels.wechatMerchantKey.pkcs8PEMRepresentation, to: wechatMerchantPrivateKeyFile, secret: true)
        try write(channels.wechatAPIv3Key + "\n", to: wechatAPIv3KeyFile, secret: true)
        try write(channels.pointsSecret + "\n", to: pointsSecretFile, secret: true)
        if let certificates = channels.alipayCertificates {
            try write(certificates.appCertificatePEM, to: appCertFile, secret: false)
            try write(certificates.alipayCertificatePEM, to: alipayCertFile, secret: false)
            try write(certificates.rootBundlePEM, to: alipayRootCertFile, secret: false)
        }
        if !files.fileExists(atPath: adminTokenFile) {
            try write(Nonce.random(40) + "\n", to: adminTokenFile, secret: true)
        }
        try writeManifest(channels, baseURL: baseURL)
    }

    func writeManifest(_ channels: SimulatedChannels, baseURL: String) throws {
        let manifest = Manifest(
            baseURL: SimulatedChannels.trimmed(baseURL), alipayAppID: channels.alipayAppID, alipaySellerID: channels.alipaySellerID,
            wechatPlatformSerial: channels.wechatPlatformSerial, wechatMerchantSerialNo: channels.wechatMerchantSerialNo,
            wechatMchID: channels.wechatMchID, wechatAppID: channels.wechatAppID, pointsPartnerID: channels.pointsPartnerID)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try write(String(decoding: try encoder.encode(manifest), as: UTF8.self) + "\n", to: manifestFile, secret: false)
    }

    /// The keys written here before, and the base URL the simulator serves at.
    public func loadKeys() throws -> (channels: SimulatedChannels, baseURL: String) {
        guard let data = FileManager.default.contents(atPath: manifestFile) else {
            throw KeyLoadError(file: manifestFile, problem: "cannot be read (run `payhook sim channels --dir \(path)` first)")
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw KeyLoadError(file: manifestFile, problem: "is not a simulator manifest")
        }
        var channels = SimulatedChannels(
            alipayKey: try KeyFiles.privateKey(alipayPrivateKeyFile), alipayAppKey: try KeyFiles.privateKey(appPrivateKeyFile),
            wechatPlatformKey: try KeyFiles.privateKey(wechatPlatformPrivateKeyFile),
            wechatMerchantKey: try KeyFiles.privateKey(wechatMerchantPrivateKeyFile),
            wechatAPIv3Key: try KeyFiles.readText(wechatAPIv3KeyFile).trimmingCharacters(in: .whitespacesAndNewlines),
            pointsSecret: try KeyFiles.readText(pointsSecretFile).trimmingCharacters(in: .whitespacesAndNewlines))
        channels.alipayAppID = manifest.alipayAppID
        channels.alipaySellerID = manifest.alipaySellerID
        channels.wechatPlatformSerial = manifest.wechatPlatformSerial
        channels.wechatMerchantSerialNo = manifest.wechatMerchantSerialNo
        channels.wechatMchID = manifest.wechatMchID
        channels.wechatAppID = manifest.wechatAppID
        channels.pointsPartnerID = manifest.pointsPartnerID
        return (channels, manifest.baseURL)
    }

    /// Settings of the generated `payhook.yaml` that are not about the channels.
    public struct ConfigurationOptions: Sendable {
        /// `database.url`.
        public var databaseURL: String
        /// `receiver.listen`. Default `127.0.0.1:8080`.
        public var receiverListen: String
        /// `api.listen`, the site API; nil serves none. Default nil.
        public var apiListen: String?
        /// Every channel's `query_timeout_ms`. Default 3000.
        public var queryTimeoutMilliseconds: Int
        /// Every channel's `cross_check` (`always`, `when_unverified`); nil leaves it out
        /// (`always`). Default nil.
        public var crossCheck: String?

        public init(databaseURL: String, receiverListen: String = "127.0.0.1:8080", apiListen: String? = nil,
                    queryTimeoutMilliseconds: Int = 3000, crossCheck: String? = nil) {
            self.databaseURL = databaseURL
            self.receiverListen = receiverListen
            self.apiListen = apiListen
            self.queryTimeoutMilliseconds = queryTimeoutMilliseconds
            self.crossCheck = crossCheck
        }
    }

    /// `alipay_public_key_file`, or certificate mode's four settings (one YAML line each).
    func alipayKeySettings(_ channels: SimulatedChannels) -> String {
        guard channels.alipayCertificates != nil else { return "alipay_public_key_file: \(quoted(alipayPublicKeyFile))" }
        return ["alipay_cert_mode: true", "app_cert_file: \(quoted(appCertFile))", "alipay_cert_file: \(quoted(alipayCertFile))",
                "alipay_root_cert_file: \(quoted(alipayRootCertFile))"].joined(separator: "\n    ")
    }

    /// The `payhook.yaml` text for the channels in this folder, querying under `baseURL`.
    /// An `https://` base URL is trusted through this folder's ``caFile`` (`ca_file`); a plain
    /// `http://` one is allowed by `insecure_http: true`.
    public func configurationYAML(_ channels: SimulatedChannels, baseURL: String, options: ConfigurationOptions) -> String {
        let timeout = options.queryTimeoutMilliseconds
        let crossCheck = options.crossCheck.map { "\n    cross_check: \(quoted($0))" } ?? ""
        let transport = baseURL.lowercased().hasPrefix("https://")
            ? "ca_file: \(quoted(caFile))"
            : "insecure_http: true          # the simulator over plain http; never for a real channel"
        return """
            # Written by `payhook sim channels`: Payhook configured against the local channel
            # simulator at \(SimulatedChannels.trimmed(baseURL)). The keys are throwaway test keys.
            database:
              url: \(quoted(options.databaseURL))
            receiver:
              listen: \(quoted(options.receiverListen))
              max_body_bytes: 65536
              trusted_proxies: []
            worker:
              threads: 4
              batch_size: 64
              lease_seconds: 30
              poll_interval_ms: 500
            retry:
              base_seconds: 5
              factor: 2
              max_delay_seconds: 3600
              max_attempts: 12
            admin:
              token_file: \(quoted(adminTokenFile))
            site:
              # The channels call back here; on this machine plain http to loopback is allowed.
              public_base_url: \(quoted("http://" + options.receiverListen))
            \(options.apiListen.map { "api:\n  listen: \(quoted($0))\n" } ?? "")
            channels:
              - id: \(SimulatedChannels.alipayID)
                type: alipay
                app_id: \(quoted(channels.alipayAppID))
                seller_id: \(quoted(channels.alipaySellerID))
                \(alipayKeySettings(channels))
                app_private_key_file: \(quoted(appPrivateKeyFile))
                gateway_url: \(quoted(SimulatedChannels.alipayGatewayURL(baseURL: baseURL)))
                \(transport)
                allowed_ips: [127.0.0.1/32, "::1/128"]
                query_timeout_ms: \(timeout)\(crossCheck)
              - id: \(SimulatedChannels.wechatPayID)
                type: wechatpay_v3
                mchid: \(quoted(channels.wechatMchID))
                appid: \(quoted(channels.wechatAppID))
                apiv3_key_file: \(quoted(wechatAPIv3KeyFile))
                platform_public_key_files: { \(quoted(channels.wechatPlatformSerial)): \(quoted(wechatPlatformPublicKeyFile)) }
                merchant_private_key_file: \(quoted(wechatMerchantPrivateKeyFile))
                merchant_serial_no: \(quoted(channels.wechatMerchantSerialNo))
                api_base_url: \(quoted(SimulatedChannels.wechatPayAPIBaseURL(baseURL: baseURL)))
                \(transport)
                allowed_ips: [127.0.0.1/32, "::1/128"]
                max_clock_skew_seconds: 300
                query_timeout_ms: \(timeout)\(crossCheck)
              - id: \(SimulatedChannels.pointsID)
                type: points
                partner_id: \(quoted(channels.pointsPartnerID))
                hmac_secret_file: \(quoted(pointsSecretFile))
                api_base_url: \(quoted(SimulatedChannels.pointsAPIBaseURL(baseURL: baseURL)))
                \(transport)
                allowed_ips: [127.0.0.1/32, "::1/128"]
                max_clock_skew_seconds: 300
                query_timeout_ms: \(timeout)\(crossCheck)
            \(webhooksYAML)
            """
    }

    /// The simulated site as the one webhook endpoint, when `payhook sim site` has written
    /// `site.json`; short waits between attempts, so a failing site recovers within the run.
    private var webhooksYAML: String {
        guard let url = siteURL else { return "" }
        return """
            webhooks:
              - id: site
                url: \(quoted(url))
                secret_file: \(quoted(siteSecretFile))
                events: [order.paid, order.closed, order.conflict]
                timeout_ms: 5000
            webhook_delivery:
              retry_schedule_seconds: [1, 2, 5, 10, 30, 60]

            """
    }

    /// Writes `payhook.yaml` (replacing an older one: it is generated) and returns its path.
    @discardableResult
    public func writeConfiguration(_ channels: SimulatedChannels, baseURL: String, options: ConfigurationOptions) throws -> String {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        // The database URL may carry a password.
        try write(configurationYAML(channels, baseURL: baseURL, options: options), to: configurationFile, secret: true)
        return configurationFile
    }

    private func write(_ text: String, to file: String, secret: Bool) throws {
        let url = URL(fileURLWithPath: file)
        try Data(text.utf8).write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: secret ? 0o600 : 0o644], ofItemAtPath: file)
    }

    /// A YAML double-quoted scalar.
    private func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
