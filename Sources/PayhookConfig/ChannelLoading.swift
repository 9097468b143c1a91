import AsyncHTTPClient
public import ChannelClients
public import Channels
import Foundation
public import Logging
import PayhookCore
public import Webhooks

extension ChannelSettings {
    /// Reads this channel's key files and builds its adapter's configuration. Errors name
    /// the channel's key (`channels[1].app_private_key_file`) and the file, never key bytes;
    /// a setting the file leaves out keeps the adapter configuration's default.
    public func load() throws(ConfigError) -> ChannelConfiguration {
        _ = try trustedClient()  // a bad ca_file fails every command that loads the channels
        return switch type {
        case .alipay: .alipay(try loadAlipay())
        case .wechatpayV3: .wechatPay(try loadWeChatPay())
        case .points: .points(try loadPoints())
        }
    }

    private func loadAlipay() throws(ConfigError) -> AlipayConfiguration {
        let sellerID = settings["seller_id"].flatMap { $0.isEmpty ? nil : $0 }
        var certificateMode: AlipayCertificateMode?
        let alipayKey: RSAPublicKey
        if alipayCertificateMode {
            let mode = try loadAlipayCertificates()
            (certificateMode, alipayKey) = (mode, mode.configuredKey)
        } else {
            alipayKey = try file("alipay_public_key_file", KeyFiles.publicKey)
        }
        var configuration = AlipayConfiguration(
            channelID: id, appID: required("app_id"), sellerID: sellerID,
            alipayPublicKey: alipayKey,
            appPrivateKey: try file("app_private_key_file", KeyFiles.privateKey),
            gatewayURL: required("gateway_url"), allowedIPs: try allowlist(), certificateMode: certificateMode)
        if let milliseconds = integer("query_timeout_ms") { configuration.queryTimeout = .milliseconds(milliseconds) }
        switch settings["allow_sign_type_rsa"] {
        case nil, "false": break
        case "true": configuration.allowSHA1SignType = true
        default: throw ConfigError(key: key("allow_sign_type_rsa"), problem: "must be true or false")
        }
        return configuration
    }

    /// A `platform_public_key_files` entry may be a certificate (its serial must equal the
    /// entry's name) or a public key.
    private func loadWeChatPay() throws(ConfigError) -> WeChatPayConfiguration {
        var platformKeys: [String: RSAPublicKey] = [:]
        for (name, path) in (maps["platform_public_key_files"] ?? [:]).sorted(by: { $0.key < $1.key }) {
            let entry = "platform_public_key_files[\(name)]"
            let text = try read(entry) { () throws(KeyLoadError) in try KeyFiles.readText(path) }
            if text.contains("-----BEGIN CERTIFICATE-----") {
                let certificate = try read(entry) { () throws(KeyLoadError) in try KeyFiles.certificate(path) }
                guard certificate.serial == WeChatPayConfiguration.normalizeSerial(name) else {
                    throw ConfigError(key: key(entry), problem: "\(path): certificate serial is \(certificate.serial), not \(name)")
                }
                platformKeys[certificate.serial] = certificate.publicKey
            } else {
                platformKeys[name] = try read(entry) { () throws(KeyLoadError) in try KeyFiles.publicKey(path) }
            }
        }
        var configuration = WeChatPayConfiguration(
            channelID: id, mchID: required("mchid"), appID: required("appid"),
            apiV3Key: try read("apiv3_key_file") { () throws(KeyLoadError) in
                try KeyFiles.secret(required("apiv3_key_file"), requiredLength: 32)
            },
            platformKeys: platformKeys, merchantPrivateKey: try file("merchant_private_key_file", KeyFiles.privateKey),
            merchantSerialNo: required("merchant_serial_no"), apiBaseURL: required("api_base_url"),
            allowedIPs: try allowlist())
        if let seconds = integer("max_clock_skew_seconds") { configuration.maxClockSkewSeconds = seconds }
        if let milliseconds = integer("query_timeout_ms") { configuration.queryTimeout = .milliseconds(milliseconds) }
        return configuration
    }

    private func loadPoints() throws(ConfigError) -> PointsConfiguration {
        let baseURL = required("api_base_url")
        guard baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") else {
            throw ConfigError(key: key("api_base_url"), problem: "must be an http(s) URL")
        }
        var configuration = PointsConfiguration(
            channelID: id, partnerID: required("partner_id"),
            hmacSecret: try read("hmac_secret_file") { () throws(KeyLoadError) in
                try KeyFiles.secret(required("hmac_secret_file"))
            },
            apiBaseURL: baseURL, allowedIPs: try allowlist())
        if let seconds = integer("max_clock_skew_seconds") { configuration.maxClockSkewSeconds = seconds }
        if let milliseconds = integer("query_timeout_ms") { configuration.queryTimeout = .milliseconds(milliseconds) }
        return configuration
    }

    /// `app_cert_file`, `alipay_cert_file` and `alipay_root_cert_file`, each read and parsed;
    /// an error names the setting and the file.
    private func loadAlipayCertificates() throws(ConfigError) -> AlipayCertificateMode {
        let app = try file("app_cert_file") { (path: String) throws(KeyLoadError) -> AlipayCertificateFile in
            do throws(KeyLoadError) {
                return try AlipayCertificateFile(pemRepresentation: try KeyFiles.readText(path))
            } catch { throw error.naming(path) }
        }
        let alipay = try file("alipay_cert_file") { (path: String) throws(KeyLoadError) -> AlipayCertificateFile in
            do throws(KeyLoadError) {
                return try AlipayCertificateFile(pemRepresentation: try KeyFiles.readText(path))
            } catch { throw error.naming(path) }
        }
        let roots = try file("alipay_root_cert_file") { (path: String) throws(KeyLoadError) -> AlipayRootBundle in
            do throws(KeyLoadError) {
                return try AlipayRootBundle(pemRepresentation: try KeyFiles.readText(path))
            } catch { throw error.naming(path) }
        }
        return AlipayCertificateMode(appCertificate: app, alipayCertificate: alipay, rootBundle: roots)
    }

    private func key(_ name: String) -> String { "\(keyPath).\(name)" }

    /// The key file the setting `name` names, read by `reader`.
    private func file<Key>(_ name: String, _ reader: (String) throws(KeyLoadError) -> Key) throws(ConfigError) -> Key {
        try read(name) { () throws(KeyLoadError) in try reader(required(name)) }
    }

    private func read<Value>(_ name: String, _ body: () throws(KeyLoadError) -> Value) throws(ConfigError) -> Value {
        do { return try body() } catch { throw ConfigError(key: key(name), problem: error.description) }
    }

    private func allowlist() throws(ConfigError) -> [CIDR] {
        var networks: [CIDR] = []
        for (index, entry) in allowedIPs.enumerated() {
            guard let cidr = CIDR.parse(entry) else {
                throw ConfigError(key: key("allowed_ips[\(index)]"), problem: "'\(entry)' is not an IPv4 or IPv6 CIDR")
            }
            networks.append(cidr)
        }
        return networks
    }
}

extension ChannelSettings {
    /// The client for this channel's API: its adapter (keys loaded) over an HTTPS transport
    /// that trusts the system's roots, or only the CAs of `ca_file`; TLS 1.2 or newer. A
    /// `ca_file` that is missing, unreadable or not PEM certificates is an error naming it.
    public func loadClient(logger: Logger = Logger(label: "payhook.channels")) throws(ConfigError) -> ChannelClient {
        let configuration = try load()
        var transport = HTTPClientTransport(channelID: id, logger: logger)
        if let client = try trustedClient() { transport.client = client }
        return configuration.makeClient(transport: transport, logger: logger)
    }

    /// The client that trusts only `ca_file`'s CAs; nil without `ca_file`.
    private func trustedClient() throws(ConfigError) -> HTTPClient? {
        guard let caFile else { return nil }
        let text = try read("ca_file") { () throws(KeyLoadError) in try KeyFiles.readText(caFile) }
        do {
            return try HTTPClientTransport.client(trustingPEM: Array(text.utf8))
        } catch {
            throw ConfigError(key: key("ca_file"), problem: "\(caFile) \(error.problem)")
        }
    }
}

extension PayhookConfiguration {
    /// Every configured channel's API client, keys and CA files loaded.
    public func loadClients(logger: Logger = Logger(label: "payhook.channels")) throws(ConfigError) -> [ChannelClient] {
        var clients: [ChannelClient] = []
        for channel in channels { clients.append(try channel.loadClient(logger: logger)) }
        return clients
    }

    /// Every configured channel with its keys loaded.
    public func loadChannels() throws(ConfigError) -> [ChannelConfiguration] {
        var loaded: [ChannelConfiguration] = []
        for channel in channels { loaded.append(try channel.load()) }
        return loaded
    }
}

extension PayhookConfiguration {
    /// `webhook_delivery:` with each `webhooks:` endpoint loaded (its secret read).
    public func loadDelivery() throws(ConfigError) -> DeliveryConfiguration {
        var loaded = delivery
        loaded.endpoints = []
        for webhook in webhooks { loaded.endpoints.append(try webhook.load()) }
        return loaded
    }
}
