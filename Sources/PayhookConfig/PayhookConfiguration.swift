public import CallbackQueue
import Channels
public import Foundation
public import PayhookCore
import Postgres
public import Receiver
public import SiteAPI
public import SiteOrders
public import Webhooks
public import Workers

/// Everything `payhook` reads from `payhook.yaml`, after environment overrides, mapped onto
/// each component's own `Configuration`. Those hold the only copy of every default: a key
/// the file leaves out keeps the component's default.
public struct PayhookConfiguration: Sendable {
    public struct Database: Sendable, Equatable {
        /// `postgres://` URL or key/value conninfo. Required (file or `PAYHOOK_DATABASE_URL`).
        public var url: String
    }

    public struct Admin: Sendable, Equatable {
        /// File holding the admin bearer token. Default `Config/secrets/admin.token`.
        public var tokenFile = "Config/secrets/admin.token"
    }

    public var database: Database
    /// `receiver:` (listening, limits, proxies) and the channel ids from `channels:`.
    public var receiver: Receiver.Configuration
    /// `receiver.tls`: the receiver terminates TLS itself. Default nil (plain HTTP).
    public var receiverTLS: ListenerTLS?
    /// `receiver:`'s group-commit settings.
    public var enqueuer: Enqueuer.Configuration
    /// `worker:`, `retry:` and `reconcile:`.
    public var worker: WorkerConfiguration
    /// `worker.metrics_listen`: where `payhook work` serves `/metrics` and `/healthz`; nil
    /// serves none (`payhook run` shares the receiver's). Default nil.
    public var workerMetricsListen: (host: String, port: Int)?
    public var admin = Admin()
    /// `api:`: the site API's listener; nil when `api.listen` is not set (no site API).
    public var api: SiteAPI.Configuration?
    /// `api.tls`: the site API terminates TLS itself. Default nil (plain HTTP).
    public var apiTLS: ListenerTLS?
    /// `site.public_base_url`: where channels reach Payhook (`/notify/{channel}`,
    /// `/return/{channel}`). Required with `api.listen`.
    public var site: SiteURLs?
    public var channels: [ChannelSettings] = []
    /// `webhooks:` (endpoints, their secrets read by `load()`).
    public var webhooks: [WebhookSettings] = []
    /// `webhook_delivery:`; its `endpoints` are filled from `webhooks` by the executable.
    public var delivery: DeliveryConfiguration

    public func channel(id: String) -> ChannelSettings? {
        channels.first { $0.id == id }
    }
}

/// One configured channel as the file gives it: its id (the `{channel}` in URLs), type,
/// allowlist, and the type's own settings, checked for the keys that type requires. Its
/// key files are read by `load()`.
public struct ChannelSettings: Sendable, Equatable {
    public let id: String
    public let type: ChannelType
    public let allowedIPs: [String]
    /// Scalar settings by key (`app_id`, `gateway_url`, ...).
    public let settings: [String: String]
    /// Mapping settings by key (`platform_public_key_files`).
    public let maps: [String: [String: String]]
    /// Where this channel sits in the file, for error messages: `channels[1]`.
    public let keyPath: String
    /// `cross_check`: `always` or `when_unverified`. Default `always`.
    public var crossCheck: CrossCheck = .always
    /// `insecure_http`: the channel's API may be plain `http://` (the simulator and tests
    /// only). Default false: its API URL must be `https://`.
    public var insecureHTTP = false
    /// `ca_file`: a PEM bundle of the only CAs trusted for this channel's API (a private
    /// CA); read by `loadClient()`. Default nil: the system's trust roots.
    public var caFile: String?

    /// The key holding each type's API URL, checked for `https://`.
    static let apiURLKeys: [ChannelType: String] = [
        .alipay: "gateway_url", .wechatpayV3: "api_base_url", .points: "api_base_url",
    ]

    static let keys: [ChannelType: (required: [String], optional: [String], integers: [String], maps: [String])] = [
        // alipay_public_key_file is required in public-key mode (checkAlipayMode).
        .alipay: (["app_id", "app_private_key_file", "gateway_url"],
                  ["seller_id", "allow_sign_type_rsa", "alipay_public_key_file"] + ChannelSettings.alipayCertificateKeys,
                  ["query_timeout_ms"], []),
        .wechatpayV3: (["mchid", "appid", "apiv3_key_file", "merchant_private_key_file", "merchant_serial_no",
                        "api_base_url"], [], ["max_clock_skew_seconds", "query_timeout_ms"], ["platform_public_key_files"]),
        .points: (["partner_id", "hmac_secret_file", "api_base_url"], [], ["max_clock_skew_seconds", "query_timeout_ms"], []),
    ]

    /// A setting the type requires (present after parsing).
    func required(_ key: String) -> String { settings[key] ?? "" }

    /// A positive whole number the type allows (checked when parsed).
    func integer(_ key: String) -> Int? { settings[key].flatMap { Int($0) } }
}

extension PayhookConfiguration {
    /// Environment variables that override a file setting, `PAYHOOK_<SECTION>_<KEY>`.
    public static let environmentOverrides: [(variable: String, section: String, key: String)] = [
        ("database", "url"),
        ("receiver", "listen"), ("receiver", "max_body_bytes"), ("receiver", "commit_timeout_ms"),
        ("receiver", "enqueue_writers"), ("receiver", "enqueue_batch_size"), ("receiver", "read_timeout_seconds"),
        ("receiver", "enforce_allowed_ips"), ("receiver", "outside_allowlist_per_second"),
        ("receiver", "outside_allowlist_burst"), ("receiver", "channel_max_per_second"),
        ("worker", "threads"), ("worker", "batch_size"), ("worker", "lease_seconds"), ("worker", "poll_interval_ms"),
        ("worker", "unknown_order_attempts"), ("worker", "metrics_listen"),
        ("reconcile", "enabled"), ("reconcile", "after_seconds"), ("reconcile", "every_seconds"),
        ("queue", "partition_interval_seconds"), ("retention", "keep_days"), ("retention", "run_every_seconds"),
        ("retry", "base_seconds"), ("retry", "factor"), ("retry", "max_delay_seconds"), ("retry", "max_attempts"),
        ("admin", "token_file"), ("api", "listen"), ("site", "public_base_url"),
    ].map { ("PAYHOOK_\($0.0.uppercased())_\($0.1.uppercased())", $0.0, $0.1) }

    /// Loads `path`, then applies environment overrides. A missing file is an error unless
    /// `allowMissingFile` (then the environment must supply what is required).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                            allowMissingFile: Bool = false) throws(ConfigError) -> PayhookConfiguration {
        let text: String
        if let data = FileManager.default.contents(atPath: path) {
            text = String(decoding: data, as: UTF8.self)
        } else if allowMissingFile {
            text = ""
        } else {
            throw ConfigError(key: "--config", problem: "cannot read \(path)")
        }
        return try parse(yaml: text, environment: environment)
    }

    public static func parse(yaml: String, environment: [String: String] = [:]) throws(ConfigError) -> PayhookConfiguration {
        var tree = try ConfigNode.parse(yaml: yaml)
        guard case .map = tree else { throw ConfigError(key: "(document)", problem: "must be a mapping") }
        for override in environmentOverrides {
            if let value = environment[override.variable] {
                tree = tree.setting(section: override.section, key: override.key, to: value)
            }
        }
        return try PayhookConfiguration(tree: tree)
    }

    init(tree: ConfigNode) throws(ConfigError) {
        var top = try ConfigReader(tree, path: "")

        var database = try ConfigReader(top.raw("database"), path: "database")
        self.database = Database(url: try database.requiredString("url"))
        try database.rejectUnknownKeys()
        let connection = Connection.Configuration(conninfo: self.database.url)

        var section = try ConfigReader(top.raw("receiver"), path: "receiver")
        receiver = Receiver.Configuration()
        enqueuer = Enqueuer.Configuration(connection: connection)
        if let listen = try section.string("listen") {
            guard let (host, port) = Self.hostPort(listen) else {
                throw ConfigError(key: "receiver.listen", problem: "must be host:port, such as 127.0.0.1:8080")
            }
            receiver.host = host
            receiver.port = port
        }
        receiver.maxBodyBytes = try section.integer("max_body_bytes", default: receiver.maxBodyBytes, range: 1...16_777_216)
        for (index, text) in try section.stringList("trusted_proxies").enumerated() {
            guard let cidr = CIDR.parse(text) else {
                throw ConfigError(key: "receiver.trusted_proxies[\(index)]", problem: "is not a CIDR such as 10.0.0.0/8")
            }
            receiver.trustedProxies.append(cidr)
        }
        enqueuer.commitTimeout = .milliseconds(try section.integer(
            "commit_timeout_ms", default: Self.milliseconds(enqueuer.commitTimeout), range: 10...60_000))
        enqueuer.writers = try section.integer("enqueue_writers", default: enqueuer.writers, range: 1...64)
        enqueuer.maxBatchSize = try section.integer("enqueue_batch_size", default: enqueuer.maxBatchSize, range: 1...1000)
        receiver.readTimeout = .seconds(try section.integer(
            "read_timeout_seconds", default: Int(receiver.readTimeout.components.seconds), range: 1...300))
        receiver.enforceAllowedIPs = try section.bool("enforce_allowed_ips", default: receiver.enforceAllowedIPs)
        receiver.ingestLimits.outsideAllowlistPerSecond = try section.number(
            "outside_allowlist_per_second", default: receiver.ingestLimits.outsideAllowlistPerSecond, range: 0...1_000_000)
        receiver.ingestLimits.outsideAllowlistBurst = try section.integer(
            "outside_allowlist_burst", default: receiver.ingestLimits.outsideAllowlistBurst, range: 1...1_000_000)
        receiver.ingestLimits.channelPerSecond = try section.number(
            "channel_max_per_second", default: receiver.ingestLimits.channelPerSecond, range: 0...10_000_000)
        receiverTLS = try section.raw("tls").map { node throws(ConfigError) in try ListenerTLS(node, path: "receiver.tls") }
        try section.rejectUnknownKeys()

        section = try ConfigReader(top.raw("worker"), path: "worker")
        worker = WorkerConfiguration(connection: connection)
        worker.threads = try section.integer("threads", default: worker.threads, range: 1...256)
        worker.batchSize = try section.integer("batch_size", default: worker.batchSize, range: 1...1000)
        worker.leaseSeconds = Double(try section.integer("lease_seconds", default: Int(worker.leaseSeconds), range: 1...3600))
        worker.pollInterval = .milliseconds(try section.integer(
            "poll_interval_ms", default: Self.milliseconds(worker.pollInterval), range: 10...60_000))
        worker.unknownOrderAttempts = try section.integer(
            "unknown_order_attempts", default: worker.unknownOrderAttempts, range: 1...1000)
        if let listen = try section.string("metrics_listen") {
            guard let address = Self.hostPort(listen) else {
                throw ConfigError(key: "worker.metrics_listen", problem: "must be host:port, such as 127.0.0.1:9090")
            }
            workerMetricsListen = address
        }
        try section.rejectUnknownKeys()

        section = try ConfigReader(top.raw("reconcile"), path: "reconcile")
        let sweeperDefaults = WorkerConfiguration.Sweeper()
        var sweeper = worker.sweeper ?? sweeperDefaults
        let sweeping = try section.bool("enabled", default: worker.sweeper != nil)
        sweeper.afterSeconds = try section.integer("after_seconds", default: sweeper.afterSeconds, range: 0...604_800)
        worker.reconcileEverySeconds = try section.integer(
            "every_seconds", default: worker.reconcileEverySeconds, range: 1...604_800)
        sweeper.maxAgeSeconds = 3600 * (try section.integer(
            "max_age_hours", default: sweeper.maxAgeSeconds / 3600, range: 1...8760))
        sweeper.batchSize = try section.integer("batch_size", default: sweeper.batchSize, range: 1...10_000)
        sweeper.interval = .seconds(try section.integer(
            "sweep_interval_seconds", default: Int(sweeper.interval.components.seconds), range: 1...86_400))
        worker.sweeper = sweeping ? sweeper : nil
        try section.rejectUnknownKeys()

        section = try ConfigReader(top.raw("queue"), path: "queue")
        var partitions = worker.partitions ?? PartitionSettings()
        partitions.intervalSeconds = Int64(try section.integer(
            "partition_interval_seconds", default: Int(partitions.intervalSeconds), range: 60...2_592_000))
        partitions.ahead = try section.integer("partitions_ahead", default: partitions.ahead, range: 1...366)
        try section.rejectUnknownKeys()

        section = try ConfigReader(top.raw("retention"), path: "retention")
        if try section.bool("enabled", default: true) {
            // Days may be fractional (a test's minutes); whole seconds are kept.
            let days = try section.number("keep_days", default: Double(partitions.keepSeconds ?? 0) / 86_400,
                                          range: 0.0001...36_500)
            partitions.keepSeconds = Int64((days * 86_400).rounded())
        } else {
            partitions.keepSeconds = nil
        }
        partitions.every = .seconds(try section.integer(
            "run_every_seconds", default: Int(partitions.every.components.seconds), range: 1...86_400))
        try section.rejectUnknownKeys()
        worker.partitions = partitions

        section = try ConfigReader(top.raw("retry"), path: "retry")
        worker.retry.baseSeconds = try section.number("base_seconds", default: worker.retry.baseSeconds, range: 0...86_400)
        worker.retry.factor = try section.number("factor", default: worker.retry.factor, range: 1...100)
        worker.retry.maxDelaySeconds = try section.number(
            "max_delay_seconds", default: worker.retry.maxDelaySeconds, range: 0...604_800)
        worker.retry.maxAttempts = try section.integer("max_attempts", default: worker.retry.maxAttempts, range: 1...1000)
        try section.rejectUnknownKeys()

        switch top.raw("webhooks") {
        case nil: break
        case .list(let items)?:
            for (index, item) in items.enumerated() {
                let webhook = try WebhookSettings.parse(item, path: "webhooks[\(index)]")
                if webhooks.contains(where: { $0.id == webhook.id }) {
                    throw ConfigError(key: "webhooks[\(index)].id", problem: "duplicates another endpoint's id")
                }
                webhooks.append(webhook)
            }
        default: throw ConfigError(key: "webhooks", problem: "must be a list")
        }

        section = try ConfigReader(top.raw("webhook_delivery"), path: "webhook_delivery")
        delivery = DeliveryConfiguration(connection: connection, workerName: worker.workerName)
        if let keep = partitions.keepSeconds {
            var retention = DeliveryRetention.Settings()
            retention.keepSeconds = keep
            retention.every = partitions.every
            delivery.retention = retention
        }
        delivery.threads = try section.integer("threads", default: delivery.threads, range: 1...64)
        delivery.maxInFlightPerEndpoint = try section.integer(
            "max_in_flight_per_endpoint", default: delivery.maxInFlightPerEndpoint, range: 1...10_000)
        delivery.pollInterval = .milliseconds(try section.integer(
            "poll_interval_ms", default: Self.milliseconds(delivery.pollInterval), range: 10...60_000))
        delivery.disableAfterFailing = .seconds(3600 * (try section.integer(
            "disable_after_failing_hours", default: Int(delivery.disableAfterFailing.components.seconds) / 3600,
            range: 1...8760)))
        if let lease = try section.string("lease_seconds") {
            let longest = webhooks.map { Double($0.timeout.components.seconds) + Double($0.timeout.components.attoseconds) / 1e18 }
                .max() ?? 0
            guard let seconds = Double(lease), seconds > longest, seconds <= 3600 else {
                throw ConfigError(key: "webhook_delivery.lease_seconds",
                                  problem: "must be seconds above the longest webhooks timeout_ms, at most 3600")
            }
            delivery.leaseSeconds = seconds
        }
        if section.raw("retry_schedule_seconds") != nil {
            var waits: [Double] = []
            for (index, text) in try section.stringList("retry_schedule_seconds").enumerated() {
                guard let wait = Double(text), wait >= 0, wait <= 7 * 86_400 else {
                    throw ConfigError(key: "webhook_delivery.retry_schedule_seconds[\(index)]",
                                      problem: "must be seconds between 0 and 604800")
                }
                waits.append(wait)
            }
            delivery.retrySchedule.waits = waits
        }
        try section.rejectUnknownKeys()

        section = try ConfigReader(top.raw("api"), path: "api")
        var api = SiteAPI.Configuration()
        api.maxBodyBytes = try section.integer("max_body_bytes", default: api.maxBodyBytes, range: 256...1_048_576)
        if let listen = try section.string("listen") {
            guard let (host, port) = Self.hostPort(listen) else {
                throw ConfigError(key: "api.listen", problem: "must be host:port, such as 127.0.0.1:8081")
            }
            api.host = host
            api.port = port
            self.api = api
        }
        apiTLS = try section.raw("tls").map { node throws(ConfigError) in try ListenerTLS(node, path: "api.tls") }
        try section.rejectUnknownKeys()

        section = try ConfigReader(top.raw("site"), path: "site")
        if let base = try section.string("public_base_url") {
            let url = try SecureURL.check(base, key: "site.public_base_url")
            guard url.query == nil, url.fragment == nil else {
                throw ConfigError(key: "site.public_base_url", problem: "must have no query or fragment")
            }
            site = SiteURLs(publicBaseURL: base)
        }
        try section.rejectUnknownKeys()
        if self.api != nil, site == nil {
            throw ConfigError(key: "site.public_base_url", problem: "is required with api.listen (the channels' notify_url is built from it)")
        }

        section = try ConfigReader(top.raw("admin"), path: "admin")
        admin.tokenFile = try section.string("token_file") ?? admin.tokenFile
        try section.rejectUnknownKeys()

        switch top.raw("channels") {
        case nil: break
        case .list(let items)?:
            for (index, item) in items.enumerated() {
                let channel = try Self.channel(item, path: "channels[\(index)]")
                if channels.contains(where: { $0.id == channel.id }) {
                    throw ConfigError(key: "channels[\(index)].id", problem: "duplicates another channel's id")
                }
                channels.append(channel)
                worker.crossCheck[channel.id] = channel.crossCheck
                receiver.channels[channel.id] = channel.type
                receiver.allowedIPs[channel.id] = try channel.allowedIPs.enumerated().map { entry throws(ConfigError) in
                    guard let cidr = CIDR.parse(entry.element) else {
                        throw ConfigError(key: "channels[\(index)].allowed_ips[\(entry.offset)]",
                                          problem: "'\(entry.element)' is not an IPv4 or IPv6 CIDR")
                    }
                    return cidr
                }
            }
        default: throw ConfigError(key: "channels", problem: "must be a list")
        }
        try top.rejectUnknownKeys()
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }

    /// `host:port` (IPv6 hosts in brackets) split, or nil when malformed.
    public static func hostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
              let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        return (String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
    }

    /// A channel API URL: `https://` with a host; plain `http://` only with `insecure_http: true`.
    static func checkChannelURL(_ text: String, key: String, insecureHTTP: Bool) throws(ConfigError) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw ConfigError(key: key, problem: "must be an https:// URL with a host")
        }
        switch scheme {
        case "https": return
        case "http" where insecureHTTP: return
        case "http":
            throw ConfigError(key: key, problem: "must be https:// (plain http only with insecure_http: true, "
                                               + "for the simulator and tests)")
        default:
            throw ConfigError(key: key, problem: "must be https://, not \(scheme)://")
        }
    }

    private static func channel(_ node: ConfigNode, path: String) throws(ConfigError) -> ChannelSettings {
        var reader = try ConfigReader(node, path: path)
        let id = try reader.requiredString("id")
        guard id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), id.count <= 64 else {
            throw ConfigError(key: "\(path).id", problem: "must be letters, digits, - or _ (at most 64)")
        }
        let typeName = try reader.requiredString("type")
        guard let type = ChannelType(rawValue: typeName) else {
            let known = ChannelType.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigError(key: "\(path).type", problem: "must be one of \(known)")
        }
        let allowedIPs = try reader.stringList("allowed_ips")
        var crossCheck = CrossCheck.always
        if let name = try reader.string("cross_check") {
            guard let policy = CrossCheck(name: name) else {
                throw ConfigError(key: "\(path).cross_check", problem: "must be \(CrossCheck.names.joined(separator: " or "))")
            }
            crossCheck = policy
        }
        let keys = ChannelSettings.keys[type]!
        var settings: [String: String] = [:]
        for key in keys.required { settings[key] = try reader.requiredString(key) }
        for key in keys.optional { settings[key] = try reader.string(key) }
        for key in keys.integers {
            guard let text = try reader.string(key) else { continue }
            guard Int(text).map({ $0 > 0 }) == true else {
                throw ConfigError(key: "\(path).\(key)", problem: "must be a positive whole number")
            }
            settings[key] = text
        }
        var maps: [String: [String: String]] = [:]
        for key in keys.maps {
            guard let map = try reader.stringMap(key), !map.isEmpty else {
                throw ConfigError(key: "\(path).\(key)", problem: "is required (serial: file)")
            }
            maps[key] = map
        }
        var channel = ChannelSettings(id: id, type: type, allowedIPs: allowedIPs, settings: settings, maps: maps, keyPath: path)
        channel.insecureHTTP = try reader.bool("insecure_http", default: false)
        channel.caFile = try reader.string("ca_file")
        if channel.caFile?.isEmpty == true {
            throw ConfigError(key: "\(path).ca_file", problem: "must name a PEM file of CA certificates")
        }
        try reader.rejectUnknownKeys()
        if type == .alipay { try ChannelSettings.checkAlipayMode(settings, path: path) }
        // Without it a notify's merchant is unchecked, so it could not stand for the query.
        if crossCheck == .whenUnverified, type == .alipay, settings["seller_id"].map({ !$0.isEmpty }) != true {
            throw ConfigError(key: "\(path).seller_id", problem: "is required with cross_check: when_unverified")
        }
        channel.crossCheck = crossCheck
        if let urlKey = ChannelSettings.apiURLKeys[type] {
            try Self.checkChannelURL(settings[urlKey] ?? "", key: "\(path).\(urlKey)", insecureHTTP: channel.insecureHTTP)
        }
        return channel
    }
}
