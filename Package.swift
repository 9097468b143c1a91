// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "payhook",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "payhook", targets: ["payhook"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.27.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.24.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        // libpq, from Debian's libpq-dev.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // OpenSSL's libcrypto, from Debian's libssl-dev: RSA signing and AES-GCM opening, where
        // it is faster than swift-crypto (see Sources/Channels/LibCrypto.swift).
        .systemLibrary(
            name: "CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // The Swift layer over libpq: connections, parameterized queries, results,
        // transactions, LISTEN/NOTIFY, pipeline mode, cancel.
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
            ],
            swiftSettings: swiftSettings
        ),
        // The shared vocabulary, Foundation only: one raw callback and header field, channel
        // types, payment status, money, order evidence, reason codes, channel HTTP messages.
        .target(
            name: "PayhookCore",
            swiftSettings: swiftSettings
        ),
        // The callback queue: migrations, group-commit enqueue, claim, fenced finish, backoff.
        .target(
            name: "CallbackQueue",
            dependencies: [
                "PayhookCore",
                "Postgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Channel adapters, pure protocol: parse, verify, acknowledge, build signed requests,
        // read signed answers. No I/O.
        .target(
            name: "Channels",
            dependencies: [
                "CLibCrypto",
                "PayhookCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["Points/PROTOCOL.md"],
            swiftSettings: swiftSettings
        ),
        // HTTPS to the channels' APIs over AsyncHTTPClient: the adapters' signed requests sent,
        // their answers handed back to be verified.
        .target(
            name: "ChannelClients",
            dependencies: [
                "Channels",
                "PayhookCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // The site's orders: the state machine and the statements that apply evidence.
        .target(
            name: "Orders",
            dependencies: ["Postgres", "PayhookCore"],
            swiftSettings: swiftSettings
        ),
        // The worker pool: claim, verify, cross-check, apply, retry; the reconciliation sweeper.
        .target(
            name: "Workers",
            dependencies: [
                "CallbackQueue",
                "ChannelClients",
                "Channels",
                "PayhookCore",
                "Orders",
                "Postgres",
                "SiteOrders",
                "Webhooks",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // payhook.yaml with environment overrides.
        .target(
            name: "PayhookConfig",
            dependencies: [
                "CallbackQueue",
                "ChannelClients",
                "Channels",
                "Orders",
                "PayhookCore",
                "Postgres",
                "Receiver",
                "SiteAPI",
                "SiteOrders",
                "Webhooks",
                "Workers",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The thin HTTP receiver.
        .target(
            name: "Receiver",
            dependencies: [
                "CallbackQueue",
                "Channels",
                "Orders",
                "Postgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                // `receiver.tls`: TLS terminated by the receiver itself.
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "PayhookCore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Orders the site makes through Payhook: the request's rules, creation and close at
        // the channel, expiry. Shared by the site API, `payhook orders` and the sweeper.
        .target(
            name: "SiteOrders",
            dependencies: [
                "ChannelClients",
                "Channels",
                "Orders",
                "PayhookCore",
                "Postgres",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The site-facing HTTP API on its own listener (`api.listen`), bearer token required.
        .target(
            name: "SiteAPI",
            dependencies: [
                "Orders",
                "SiteOrders",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Webhooks to the site's application: endpoints, Standard Webhooks signing, the
        // deliveries' leased queue (fanned out from the orders' outbox) and its threads.
        .target(
            name: "Webhooks",
            dependencies: [
                "Postgres",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // The simulated channels (query APIs, keys, config) and the load generator.
        .target(
            name: "Simulator",
            dependencies: [
                "PayhookConfig",
                "ChannelClients",
                "Channels",
                "PayhookCore",
                "Webhooks",
                .product(name: "Crypto", package: "swift-crypto"),
                "Postgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                // `sim channels --tls`: HTTPS with a CA the simulator makes (swift-certificates).
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "payhook",
            dependencies: [
                "Postgres",
                "CallbackQueue",
                "ChannelClients",
                "Channels",
                "Orders",
                "PayhookConfig",
                "PayhookCore",
                "Receiver",
                "Webhooks",
                "Workers",
                "Simulator",
                "SiteAPI",
                "SiteOrders",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "QueueBenchmark",
            dependencies: ["Postgres", "CallbackQueue", "PayhookCore", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/QueueBenchmark",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "DrainBenchmark",
            dependencies: [
                "CallbackQueue", "Channels", "PayhookCore", "Postgres", "Simulator", "Workers",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/DrainBenchmark",
            swiftSettings: swiftSettings
        ),
        // Orders through the site API per scene beside the raw RSA-2048 signing rate (Benchmarks/orders).
        .executableTarget(
            name: "OrdersBenchmark",
            dependencies: [
                "Channels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/OrdersBenchmark",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "BaselineServer",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "Benchmarks/BaselineServer",
            swiftSettings: swiftSettings
        ),
        // Starts throwaway PostgreSQL clusters and databases for the tests.
        .target(
            name: "PostgresTestSupport",
            dependencies: ["CallbackQueue", "Postgres", "Workers"],
            path: "Tests/PostgresTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "PostgresTestSupport"
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallbackQueueTests",
            dependencies: [
                "PayhookCore","CallbackQueue", "Postgres", "PostgresTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // libFuzzer target over the channel adapters (see Tests/ChannelFuzz/FUZZING.md).
        .executableTarget(
            name: "ChannelFuzz",
            dependencies: ["Channels", "PayhookConfig", "PayhookCore", "Simulator"],
            path: "Tests/ChannelFuzz",
            exclude: ["FUZZING.md"],
            swiftSettings: swiftSettings
        ),
        // Verification throughput per channel type beside raw RSA verify.
        .executableTarget(
            name: "ChannelBenchmark",
            dependencies: ["Channels", "PayhookCore", "Simulator"],
            path: "Benchmarks/ChannelBenchmark",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChannelsTests",
            dependencies: ["Channels", "ChannelClients", "PayhookCore", "Simulator",
                           .product(name: "X509", package: "swift-certificates"), .product(name: "SwiftASN1", package: "swift-asn1")],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SiteAPITests",
            dependencies: [
                "CallbackQueue", "ChannelClients", "Channels", "Orders", "Receiver", "PayhookCore", "Postgres", "PostgresTestSupport", "Simulator",
                "SiteAPI", "SiteOrders",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ReceiverTests",
            dependencies: [
                "Workers",
                "Receiver", "CallbackQueue", "Channels", "PayhookConfig", "PayhookCore", "Postgres", "PostgresTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebhooksTests",
            dependencies: [
                "Webhooks", "Orders", "PayhookCore", "Postgres", "PostgresTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OrdersTests",
            dependencies: [
                "PayhookCore","Orders", "Channels", "Postgres", "PostgresTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkersTests",
            dependencies: [
                "Workers", "Orders", "CallbackQueue", "Channels", "PayhookCore", "Postgres", "PostgresTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        // The whole pipeline: receiver, workers (in-process and as `payhook work` processes),
        // simulated channels, one real PostgreSQL.
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "ChannelClients",
                "PayhookCore",
                "Workers", "Receiver", "Simulator", "PayhookConfig", "CallbackQueue", "Channels", "Postgres",
                "PostgresTestSupport", "Orders", "Webhooks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SimulatorTests",
            dependencies: [
                "Receiver",
                "ChannelClients",
                "PayhookCore",
                "Simulator", "Channels", "Postgres", "PostgresTestSupport", "PayhookConfig",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `payhook` command's own pieces (systemd's notify protocol), and the built binary under them.
        .testTarget(
            name: "PayhookCommandTests",
            dependencies: ["payhook", "Postgres", "PostgresTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PayhookConfigTests",
            dependencies: [
                "Postgres",
                "Receiver", "Workers",
                "PayhookCore","PayhookConfig", "CallbackQueue", "Channels", "Webhooks"],
            swiftSettings: swiftSettings
        ),
    ]
)
