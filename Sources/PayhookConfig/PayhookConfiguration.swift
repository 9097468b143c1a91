public import CallbackQueue
public import PayhookCore
public import Foundation

/// Everything `payhook` reads from `payhook.yaml`, after environment overrides.
public struct PayhookConfiguration: Sendable, Equatable {
    public struct Database: Sendable, Equatable {
        /// `postgres://` URL or key/value conninfo. Required (file or `PAYHOOK_DATABASE_URL`).
        public var url: String
    }

    public struct Receiver: Sendable, Equatable {
        /// Default `127.0.0.1`.
        public var host = "127.0.0.1"
        /// Default 8080.
        public var port = 8080
        /// Bodies above this are refused with 413 and not stored. Default 65536.
        public var maxBodyBytes = 65536
        /// CIDRs whose X-Forwarded-For is believed. Default none.
        public var trustedProxies: [String] = []
        /// How long a request waits for its commit before 503. Default 2000 ms.
        public var commitTimeoutMilliseconds = 2000
        /// Group-commit writer connections. Default 1.
        public var enqueueWriters = 1
        /// Most callbacks in one commit. Default 64.
        public var enqueueBatchSize = 64
        /// A request must arrive whole within this. Default 10 s.
        public var readTimeoutSeconds = 10
    }

    public struct Worker: Sendable, Equatable {
        /// Worker threads, each with its own connection. Default 4.
        public var threads = 4
        /// Most callbacks claimed at once. Default 64.
        public var batchSize = 64
        /// How long a claim holds a callback. Default 30 s.
        public var leaseSeconds = 30
        /// Poll interval besides LISTEN/NOTIFY. Default 500 ms.
        public var pollIntervalMilliseconds = 500
        /// Attempts a callback for an order not (yet) in `orders` gets before it is dead:
        /// the site's order insert may race its callback. Default 5.
        public var unknownOrderAttempts = 5
        /// `host:port` serving `/metrics` and `/healthz` for `payhook work`; nil serves none.
        /// (`payhook run` shares the receiver's.) Default nil.
        public var metricsListen: String?
    }

    /// The reconciliation sweeper: orders still `created` are asked about at their channel.
    public struct Reconcile: Sendable, Equatable {
        /// Off for installs that reconcile elsewhere. Default true.
        public var enabled = true
        /// An order is first queried this long after its creation. Default 600 s.
        public var afterSeconds = 600
        /// At most one query per order per this, also after a forged callback. Default 600 s.
        public var everySeconds = 600
        /// Orders older than this are left alone. Default 72 h.
        public var maxAgeHours = 72
        /// Orders queried per sweep. Default 100.
        public var batchSize = 100
        /// Time between sweeps. Default 30 s.
        public var sweepIntervalSeconds = 30

        public init() {}
    }

    public struct Admin: Sendable, Equatable {
        /// File holding the admin bearer token. Default `Config/secrets/admin.token`.
        public var tokenFile = "Config/secrets/admin.token"
    }

    public var database: Database
    public var receiver = Receiver()
    public var worker = Worker()
    /// The `retry:` block.
    public var retry = RetryPolicy()
    public var reconcile = Reconcile()
    public var admin = Admin()
    public var channels: [ChannelConfiguration] = []

    public func channel(id: String) -> ChannelConfiguration? {
        channels.first { $0.id == id }
    }
}

/// One configured channel: its id (the `{channel}` in URLs), type, allowlist, and the
/// type's own settings, checked for the keys that type requires.
public struct ChannelConfiguration: Sendable, Equatable {
    public let id: String
    public let type: ChannelType
    public let allowedIPs: [String]
    /// Scalar settings by key (`app_id`, `gateway_url`, ...).
    public let settings: [String: String]
    /// Mapping settings by key (`platform_public_key_files`).
    public let maps: [String: [String: String]]
    /// Where this channel sits in the file, for error messages: `channels[1]`.
    public let keyPath: String

    static let keys: [ChannelType: (required: [String], optional: [String], maps: [String])] = [
        .alipay: (["app_id", "alipay_public_key_file", "app_private_key_file", "gateway_url"],
                  ["seller_id", "query_timeout_ms", "allow_sign_type_rsa"], []),
        .wechatpayV3: (["mchid", "appid", "apiv3_key_file", "merchant_private_key_file", "merchant_serial_no",
                        "api_base_url"],
                       ["max_clock_skew_seconds", "query_timeout_ms"], ["platform_public_key_files"]),
        .points: (["partner_id", "hmac_secret_file", "api_base_url"],
                  ["max_clock_skew_seconds", "query_timeout_ms"], []),
    ]

    /// A setting the type requires (present after loading).
    public func required(_ key: String) -> String { settings[key] ?? "" }

    public func integer(_ key: String) -> Int? { settings[key].flatMap { Int($0) } }
}

extension PayhookConfiguration {
    /// Environment variables that override a file setting, `PAYHOOK_<SECTION>_<KEY>`.
    public static let environmentOverrides: [(variable: String, section: String, key: String)] = [
        ("database", "url"),
        ("receiver", "listen"), ("receiver", "max_body_bytes"), ("receiver", "commit_timeout_ms"),
        ("receiver", "enqueue_writers"), ("receiver", "enqueue_batch_size"), ("receiver", "read_timeout_seconds"),
        ("worker", "threads"), ("worker", "batch_size"), ("worker", "lease_seconds"), ("worker", "poll_interval_ms"),
        ("worker", "unknown_order_attempts"), ("worker", "metrics_listen"),
        ("reconcile", "enabled"), ("reconcile", "after_seconds"), ("reconcile", "every_seconds"),
        ("retry", "base_seconds"), ("retry", "factor"), ("retry", "max_delay_seconds"), ("retry", "max_attempts"),
        ("admin", "token_file"),
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

        var receiver = try ConfigReader(top.raw("receiver"), path: "receiver")
        if let listen = try receiver.string("listen") {
            guard let (host, port) = Self.hostPort(listen) else {
                throw ConfigError(key: "receiver.listen", problem: "must be host:port, such as 127.0.0.1:8080")
            }
            self.receiver.host = host
            self.receiver.port = port
        }
        self.receiver.maxBodyBytes = try receiver.integer("max_body_bytes", default: 65536, range: 1...16_777_216)
        self.receiver.trustedProxies = try receiver.stringList("trusted_proxies")
        self.receiver.commitTimeoutMilliseconds = try receiver.integer("commit_timeout_ms", default: 2000, range: 10...60_000)
        self.receiver.enqueueWriters = try receiver.integer("enqueue_writers", default: 1, range: 1...64)
        self.receiver.enqueueBatchSize = try receiver.integer("enqueue_batch_size", default: 64, range: 1...1000)
        self.receiver.readTimeoutSeconds = try receiver.integer("read_timeout_seconds", default: 10, range: 1...300)
        try receiver.rejectUnknownKeys()

        var worker = try ConfigReader(top.raw("worker"), path: "worker")
        self.worker.threads = try worker.integer("threads", default: 4, range: 1...256)
        self.worker.batchSize = try worker.integer("batch_size", default: 64, range: 1...1000)
        self.worker.leaseSeconds = try worker.integer("lease_seconds", default: 30, range: 1...3600)
        self.worker.pollIntervalMilliseconds = try worker.integer("poll_interval_ms", default: 500, range: 10...60_000)
        self.worker.unknownOrderAttempts = try worker.integer("unknown_order_attempts", default: 5, range: 1...1000)
        if let listen = try worker.string("metrics_listen") {
            guard Self.hostPort(listen) != nil else {
                throw ConfigError(key: "worker.metrics_listen", problem: "must be host:port, such as 127.0.0.1:9090")
            }
            self.worker.metricsListen = listen
        }
        try worker.rejectUnknownKeys()

        var reconcile = try ConfigReader(top.raw("reconcile"), path: "reconcile")
        self.reconcile.enabled = try reconcile.bool("enabled", default: true)
        self.reconcile.afterSeconds = try reconcile.integer("after_seconds", default: 600, range: 0...604_800)
        self.reconcile.everySeconds = try reconcile.integer("every_seconds", default: 600, range: 1...604_800)
        self.reconcile.maxAgeHours = try reconcile.integer("max_age_hours", default: 72, range: 1...8760)
        self.reconcile.batchSize = try reconcile.integer("batch_size", default: 100, range: 1...10_000)
        self.reconcile.sweepIntervalSeconds = try reconcile.integer("sweep_interval_seconds", default: 30, range: 1...86_400)
        try reconcile.rejectUnknownKeys()

        var retry = try ConfigReader(top.raw("retry"), path: "retry")
        self.retry.baseSeconds = try retry.number("base_seconds", default: 5, range: 0...86_400)
        self.retry.factor = try retry.number("factor", default: 2, range: 1...100)
        self.retry.maxDelaySeconds = try retry.number("max_delay_seconds", default: 3600, range: 0...604_800)
        self.retry.maxAttempts = try retry.integer("max_attempts", default: 12, range: 1...1000)
        try retry.rejectUnknownKeys()

        var admin = try ConfigReader(top.raw("admin"), path: "admin")
        self.admin.tokenFile = try admin.string("token_file") ?? self.admin.tokenFile
        try admin.rejectUnknownKeys()

        switch top.raw("channels") {
        case nil: break
        case .list(let items)?:
            for (index, item) in items.enumerated() {
                let channel = try Self.channel(item, path: "channels[\(index)]")
                if channels.contains(where: { $0.id == channel.id }) {
                    throw ConfigError(key: "channels[\(index)].id", problem: "duplicates another channel's id")
                }
                channels.append(channel)
            }
        default: throw ConfigError(key: "channels", problem: "must be a list")
        }
        try top.rejectUnknownKeys()
    }

    /// `host:port` (IPv6 hosts in brackets) split, or nil when malformed.
    public static func hostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
              let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        return (String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
    }

    private static func channel(_ node: ConfigNode, path: String) throws(ConfigError) -> ChannelConfiguration {
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
        let keys = ChannelConfiguration.keys[type]!
        var settings: [String: String] = [:]
        for key in keys.required { settings[key] = try reader.requiredString(key) }
        for key in keys.optional { settings[key] = try reader.string(key) }
        var maps: [String: [String: String]] = [:]
        for key in keys.maps {
            guard let map = try reader.stringMap(key), !map.isEmpty else {
                throw ConfigError(key: "\(path).\(key)", problem: "is required (serial: file)")
            }
            maps[key] = map
        }
        for key in ["query_timeout_ms", "max_clock_skew_seconds"] {
            if let text = settings[key], Int(text).map({ $0 > 0 }) != true {
                throw ConfigError(key: "\(path).\(key)", problem: "must be a positive whole number")
            }
        }
        try reader.rejectUnknownKeys()
        return ChannelConfiguration(id: id, type: type, allowedIPs: allowedIPs, settings: settings, maps: maps,
                                    keyPath: path)
    }
}
