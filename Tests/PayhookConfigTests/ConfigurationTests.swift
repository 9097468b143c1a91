import CallbackQueue
import Channels
import Foundation
import PayhookCore
import PayhookConfig
import Postgres
import Receiver
import Workers
import Webhooks
import Testing

@Suite struct ConfigurationTests {
    static let exampleURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Config/payhook.yaml")

    @Test func loadsTheShippedExample() throws {
        let configuration = try PayhookConfiguration.load(path: Self.exampleURL.path, environment: [:])
        #expect(configuration.database.url == "postgres://payhook@127.0.0.1:5432/payhook")
        #expect(configuration.receiver.host == "127.0.0.1")
        #expect(configuration.receiver.port == 8080)
        #expect(configuration.worker.threads == 4)
        #expect(configuration.worker.retry == RetryPolicy(baseSeconds: 5, factor: 2, maxDelaySeconds: 3600, maxAttempts: 12))
        #expect(configuration.channels.map(\.id) == ["alipay", "wechatpay", "points"])
        #expect(configuration.channels.map(\.type) == [.alipay, .wechatpayV3, .points])
        let wechat = try #require(configuration.channel(id: "wechatpay"))
        #expect(wechat.maps["platform_public_key_files"]?["PUB_KEY_ID_0001"] == "Config/keys/wechat_platform_public.pem")
        #expect(wechat.allowedIPs == ["127.0.0.1/32"])
        #expect(configuration.channel(id: "alipay")?.settings["seller_id"] == "2088000000000001")
        #expect(configuration.worker.unknownOrderAttempts == 5)
        #expect(configuration.workerMetricsListen == nil)
        // Keys the example leaves out keep the components' own defaults.
        let defaults = WorkerConfiguration(connection: .init(conninfo: "x"))
        #expect(configuration.worker.reconcileEverySeconds == defaults.reconcileEverySeconds)
        #expect(configuration.worker.sweeper?.afterSeconds == defaults.sweeper?.afterSeconds)
        #expect(configuration.worker.sweeper?.maxAgeSeconds == 72 * 3600)
        #expect(configuration.enqueuer.writers == 1 && configuration.enqueuer.commitTimeout == .seconds(2))
        #expect(configuration.receiver.readTimeout == Receiver.Configuration().readTimeout)
        // The example states the ingest limits' defaults.
        #expect(configuration.receiver.ingestLimits == Receiver.IngestLimits())
        #expect(configuration.receiver.enforceAllowedIPs == false)
        #expect(configuration.receiver.allowedIPs["wechatpay"] == [CIDR.parse("127.0.0.1/32")!])
    }

    @Test func ingestLimitsAndTheirDefaults() throws {
        let defaults = try PayhookConfiguration.parse(yaml: "database: {url: x}").receiver
        #expect(defaults.ingestLimits.outsideAllowlistPerSecond == 5 && defaults.ingestLimits.outsideAllowlistBurst == 20)
        #expect(defaults.ingestLimits.channelPerSecond == 0, "the channel cap is off")
        #expect(defaults.enforceAllowedIPs == false)
        let set = try PayhookConfiguration.parse(yaml: """
            database: {url: x}
            receiver: {outside_allowlist_per_second: 0.5, outside_allowlist_burst: 3, channel_max_per_second: 2000,
                       enforce_allowed_ips: true}
            channels: [{id: p, type: points, partner_id: p, hmac_secret_file: f, api_base_url: https://u.example, allowed_ips: [10.0.0.0/8]}]
            """).receiver
        #expect(set.ingestLimits.outsideAllowlistPerSecond == 0.5 && set.ingestLimits.outsideAllowlistBurst == 3)
        #expect(set.ingestLimits.channelPerSecond == 2000)
        #expect(set.enforceAllowedIPs)
        #expect(set.allowedIPs == ["p": [CIDR.parse("10.0.0.0/8")!]])
        let environment = try PayhookConfiguration.parse(yaml: "database: {url: x}", environment: [
            "PAYHOOK_RECEIVER_ENFORCE_ALLOWED_IPS": "true", "PAYHOOK_RECEIVER_CHANNEL_MAX_PER_SECOND": "50",
        ]).receiver
        #expect(environment.enforceAllowedIPs && environment.ingestLimits.channelPerSecond == 50)
    }

    @Test func listenerTLSIsOptionalPerListener() throws {
        let plain = try PayhookConfiguration.parse(yaml: "database: {url: x}")
        #expect(plain.receiverTLS == nil && plain.apiTLS == nil)
        let tls = try PayhookConfiguration.parse(yaml: """
            database: {url: x}
            receiver: {tls: {cert_file: /etc/payhook/tls/receiver.pem, key_file: /etc/payhook/tls/receiver.key}}
            """)
        #expect(tls.receiverTLS?.certFile == "/etc/payhook/tls/receiver.pem")
        #expect(tls.receiverTLS?.keyFile == "/etc/payhook/tls/receiver.key")
        #expect(tls.receiverTLS?.keyPath == "receiver.tls")
        #expect(tls.apiTLS == nil)
    }

    @Test func retentionCoversTheQueueAndTheWebhookRows() throws {
        let defaults = try PayhookConfiguration.parse(yaml: "database: {url: x}")
        #expect(defaults.worker.partitions?.keepSeconds == Int64(604_800))
        #expect(defaults.delivery.retention?.keepSeconds == Int64(604_800))
        #expect(defaults.delivery.retention?.every == .seconds(300))
        let short = try PayhookConfiguration.parse(yaml: "database: {url: x}\nretention: {keep_days: 0.5, run_every_seconds: 60}")
        #expect(short.worker.partitions?.keepSeconds == 43_200 && short.delivery.retention?.keepSeconds == 43_200)
        #expect(short.delivery.retention?.every == .seconds(60))
        let off = try PayhookConfiguration.parse(yaml: "database: {url: x}\nretention: {enabled: false}")
        #expect(off.worker.partitions?.keepSeconds == nil && off.delivery.retention == nil)
    }

    @Test func workerAndReconcileSettings() throws {
        let configuration = try PayhookConfiguration.parse(yaml: """
            database: {url: x}
            worker: {unknown_order_attempts: 3, metrics_listen: "127.0.0.1:9100"}
            reconcile: {enabled: true, after_seconds: 60, every_seconds: 120, max_age_hours: 1, batch_size: 7,
                        sweep_interval_seconds: 5}
            """, environment: ["PAYHOOK_RECONCILE_EVERY_SECONDS": "90"])
        #expect(configuration.worker.unknownOrderAttempts == 3)
        #expect(configuration.workerMetricsListen?.host == "127.0.0.1" && configuration.workerMetricsListen?.port == 9100)
        let sweeper = try #require(configuration.worker.sweeper)
        #expect(sweeper.afterSeconds == 60)
        #expect(configuration.worker.reconcileEverySeconds == 90)
        #expect(sweeper.maxAgeSeconds == 3600)
        #expect(sweeper.batchSize == 7)
        #expect(sweeper.interval == .seconds(5))
        let off = try PayhookConfiguration.parse(yaml: "database: {url: x}\nreconcile: {enabled: false}")
        #expect(off.worker.sweeper == nil)
    }

    @Test func crossCheckIsPerChannelAndAlwaysByDefault() throws {
        let configuration = try PayhookConfiguration.parse(yaml: """
            database: {url: x}
            channels:
              - {id: a, type: alipay, app_id: a, seller_id: s, alipay_public_key_file: f, app_private_key_file: g,
                 gateway_url: "https://u.example", cross_check: when_unverified}
              - {id: p, type: points, partner_id: p, hmac_secret_file: f, api_base_url: "https://u.example", cross_check: always}
              - {id: q, type: points, partner_id: q, hmac_secret_file: f, api_base_url: "https://u.example"}
            """)
        #expect(configuration.channels.map(\.crossCheck) == [.whenUnverified, .always, .always])
        #expect(configuration.worker.crossCheck == ["a": .whenUnverified, "p": .always, "q": .always])
        #expect(WorkerConfiguration(connection: .init(conninfo: "x")).crossCheck.isEmpty, "no channel named: always")
        let example = try PayhookConfiguration.load(path: Self.exampleURL.path, environment: [:])
        #expect(example.channels.allSatisfy { $0.crossCheck == .always })
    }

    @Test func channelKeyFileErrorsNameTheChannelsKey() throws {
        let configuration = try PayhookConfiguration.parse(yaml: """
            database: {url: x}
            channels: [{id: p, type: points, partner_id: site, hmac_secret_file: /nonexistent/secret, api_base_url: "https://x"}]
            """)
        do {
            _ = try configuration.loadChannels()
            Issue.record("expected an error")
        } catch {
            #expect(error.key == "channels[0].hmac_secret_file")
            #expect(error.problem.contains("/nonexistent/secret"))
        }
    }

    @Test func webhookEndpointsLoadTheirSecretsAndNameTheKeyWhenTheyCannot() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-webhooks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = directory.appendingPathComponent("good.secret").path
        let bad = directory.appendingPathComponent("bad.secret").path
        try "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n".write(toFile: good, atomically: true, encoding: .utf8)
        try "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let configuration = try PayhookConfiguration.parse(yaml: """
            database: {url: x}
            webhooks:
              - {id: shop, url: "https://shop.example/payhook", secret_file: \(good), events: [order.paid], timeout_ms: 2500}
              - {id: local, url: "http://127.0.0.1:9000/hook", secret_file: \(good)}
            webhook_delivery: {threads: 2, retry_schedule_seconds: [1, 2.5], disable_after_failing_hours: 24}
            """)
        let delivery = try configuration.loadDelivery()
        #expect(delivery.endpoints.map(\.id) == ["shop", "local"])
        #expect(delivery.endpoints[0].kinds == ["order.paid"])
        #expect(delivery.endpoints[1].kinds == ["order.paid", "order.closed", "order.conflict", "order.refunded"], "all by default")
        #expect(delivery.endpoints[0].timeout == .milliseconds(2500))
        #expect(delivery.endpoints[0].signer.keys.count == 1)
        #expect(delivery.threads == 2 && delivery.retrySchedule.waits == [1, 2.5])
        #expect(delivery.disableAfterFailing == .seconds(86_400))

        for (file, problem) in [("/nonexistent/shop.secret", "/nonexistent/shop.secret"), (bad, "does not start with whsec_")] {
            let broken = try PayhookConfiguration.parse(yaml: """
                database: {url: x}
                webhooks: [{id: shop, url: "https://shop.example/payhook", secret_file: \(file)}]
                """)
            do {
                _ = try broken.loadDelivery()
                Issue.record("expected an error for \(file)")
            } catch {
                #expect(error.key == "webhooks[0].secret_file")
                #expect(error.problem.contains(problem), "\(error.problem)")
                #expect(!error.description.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "never the secret")
            }
        }
    }

    @Test func environmentOverridesTheFile() throws {
        let configuration = try PayhookConfiguration.load(path: Self.exampleURL.path, environment: [
            "PAYHOOK_DATABASE_URL": "postgres://other@127.0.0.1:6000/x",
            "PAYHOOK_WORKER_THREADS": "9",
            "PAYHOOK_RECEIVER_LISTEN": "0.0.0.0:9090",
            "PAYHOOK_RETRY_BASE_SECONDS": "0.5",
            "PAYHOOK_RETRY_MAX_ATTEMPTS": "3",
        ])
        #expect(configuration.worker.retry.baseSeconds == 0.5)
        #expect(configuration.worker.retry.maxAttempts == 3)
        #expect(configuration.worker.retry.decide(afterFailedAttempt: 3) == .giveUp)
        #expect(configuration.database.url == "postgres://other@127.0.0.1:6000/x")
        #expect(configuration.worker.threads == 9)
        #expect(configuration.receiver.host == "0.0.0.0")
        #expect(configuration.receiver.port == 9090)
    }

    @Test func environmentAloneIsEnough() throws {
        let configuration = try PayhookConfiguration.parse(yaml: "", environment: ["PAYHOOK_DATABASE_URL": "postgres://a@b/c"])
        #expect(configuration.database.url == "postgres://a@b/c")
        #expect(configuration.worker.batchSize == 64)
        #expect(configuration.channels.isEmpty)
    }

    @Test(arguments: [
        ("worker: {threads: 2}", "database.url", "is required"),
        ("database: {url: x}\nworker: {threads: zero}", "worker.threads", "must be a whole number from 1 to 256"),
        ("database: {url: x}\nworker: {threads: 0}", "worker.threads", "must be a whole number from 1 to 256"),
        ("database: {url: x}\nworker: {thread: 3}", "worker.thread", "is not a known setting"),
        ("database: {url: x}\nretry: {factor: abc}", "retry.factor", "must be a number from 1.0 to 100.0"),
        ("database: {url: x}\nreceiver: {listen: localhost}", "receiver.listen", "must be host:port, such as 127.0.0.1:8080"),
        ("database: {url: x}\nreceiver: {enforce_allowed_ip: true}", "receiver.enforce_allowed_ip", "is not a known setting"),
        ("database: {url: x}\nreceiver: {enforce_allowed_ips: sometimes}", "receiver.enforce_allowed_ips", "must be true or false"),
        ("database: {url: x}\nreceiver: {outside_allowlist_per_second: -1}", "receiver.outside_allowlist_per_second",
         "must be a number from 0.0 to 1000000.0"),
        ("database: {url: x}\nreceiver: {outside_allowlist_burst: 0}", "receiver.outside_allowlist_burst",
         "must be a whole number from 1 to 1000000"),
        ("database: {url: x}\nchannels: [{id: p, type: points, partner_id: p, hmac_secret_file: f, api_base_url: https://u.example, allowed_ips: [nowhere]}]",
         "channels[0].allowed_ips[0]", "'nowhere' is not an IPv4 or IPv6 CIDR"),
        ("database: {url: x}\nchannels: [{id: a, type: paypal}]", "channels[0].type", "must be one of alipay, wechatpay_v3, points"),
        ("database: {url: x}\nchannels: [{id: a, type: points, partner_id: p, hmac_secret_file: f}]", "channels[0].api_base_url", "is required"),
        ("database: {url: x}\nchannels: [{id: a, type: points, partner_id: p, hmac_secret_file: f, api_base_url: https://u.example}, {id: a, type: points, partner_id: p, hmac_secret_file: f, api_base_url: https://u.example}]", "channels[1].id", "duplicates another channel's id"),
        ("database: {url: x}\nchannels: [{id: w, type: wechatpay_v3, mchid: m, appid: a, apiv3_key_file: k, merchant_private_key_file: p, merchant_serial_no: s, api_base_url: https://u.example}]", "channels[0].platform_public_key_files", "is required (serial: file)"),
        ("database: {url: x}\nchannels: [{id: a, type: alipay, app_id: a, alipay_public_key_file: f, app_private_key_file: g, gateway_url: https://u.example, query_timeout_ms: -5}]", "channels[0].query_timeout_ms", "must be a positive whole number"),
        ("database: {url: x}\nchannels: [{id: p, type: points, partner_id: p, hmac_secret_file: f, api_base_url: https://u.example, cross_check: never}]",
         "channels[0].cross_check", "must be always or when_unverified"),
        ("database: {url: x}\nchannels: [{id: p, type: points, partner_id: p, hmac_secret_file: f, api_base_url: https://u.example, cross_check: [always]}]",
         "channels[0].cross_check", "must be a string"),
        ("database: {url: x}\nchannels: [{id: a, type: alipay, app_id: a, alipay_public_key_file: f, app_private_key_file: g, gateway_url: https://u.example, cross_check: when_unverified}]",
         "channels[0].seller_id", "is required with cross_check: when_unverified"),
        ("database: {url: x}\nworker: [1, 2]", "worker", "must be a mapping"),
        ("database: {url: x}\ndatabase: {url: y}", "database", "given twice"),
        ("database: {url: x}\nworker: {metrics_listen: nowhere}", "worker.metrics_listen", "must be host:port, such as 127.0.0.1:9090"),
        ("database: {url: x}\nreconcile: {every_seconds: 0}", "reconcile.every_seconds", "must be a whole number from 1 to 604800"),
        ("database: {url: x}\nreconcile: {sweep: 1}", "reconcile.sweep", "is not a known setting"),
        ("database: {url: x}\nwebhooks: [{id: s, url: \"ftp://shop.example/h\", secret_file: f}]", "webhooks[0].url",
         "must be http:// or https://, not ftp://"),
        ("database: {url: x}\nwebhooks: [{id: s, url: \"http://shop.example/h\", secret_file: f}]", "webhooks[0].url",
         "must be https:// (plain http only to a loopback address)"),
        ("database: {url: x}\nwebhooks: [{id: s, url: \"not a url\", secret_file: f}]", "webhooks[0].url",
         "must be an http(s) URL with a host"),
        ("database: {url: x}\nwebhooks: [{id: s, url: \"https://shop.example/h\"}]", "webhooks[0].secret_file", "is required"),
        ("database: {url: x}\nwebhooks: [{id: s, url: \"https://shop.example/h\", secret_file: f, events: [order.paid, order.shipped]}]",
         "webhooks[0].events[1]", "must be one of order.paid, order.closed, order.conflict, order.refunded"),
        ("database: {url: x}\nwebhooks: [{id: s, url: \"https://a.example\", secret_file: f}, {id: s, url: \"https://b.example\", secret_file: f}]",
         "webhooks[1].id", "duplicates another endpoint's id"),
        ("database: {url: x}\nwebhooks: [{id: s, url: \"https://a.example\", secret_file: f, timeout_ms: 5}]",
         "webhooks[0].timeout_ms", "must be a whole number from 100 to 120000"),
        ("database: {url: x}\nwebhook_delivery: {retry_schedule_seconds: [5, -1]}", "webhook_delivery.retry_schedule_seconds[1]",
         "must be seconds between 0 and 604800"),
        ("database: {url: x}\nwebhook_delivery: {threds: 2}", "webhook_delivery.threds", "is not a known setting"),
        ("database: {url: x}\napi: {listen: \"127.0.0.1:8081\"}", "site.public_base_url",
         "is required with api.listen (the channels' notify_url is built from it)"),
        ("database: {url: x}\nsite: {public_base_url: \"http://pay.example.com\"}", "site.public_base_url",
         "must be https:// (plain http only to a loopback address)"),
        ("database: {url: x}\nsite: {public_base_url: \"https://pay.example.com/?a=1\"}", "site.public_base_url",
         "must have no query or fragment"),
        ("database: {url: x}\napi: {listen: nowhere}", "api.listen", "must be host:port, such as 127.0.0.1:8081"),
        ("database: {url: x}\napi: {max_body_bytes: 10}", "api.max_body_bytes", "must be a whole number from 256 to 1048576"),
        ("database: {url: x}\nsite: {base: y}", "site.base", "is not a known setting"),
        ("database: {url: x}\nreceiver: {tls: {cert_file: c.pem}}", "receiver.tls.key_file", "is required"),
        ("database: {url: x}\nreceiver: {tls: {cert_file: c.pem, key_file: k.pem, ca: x}}", "receiver.tls.ca", "is not a known setting"),
        ("database: {url: x}\napi: {tls: on}", "api.tls", "must be a mapping"),
    ])
    func errorsNameTheKey(yaml: String, key: String, problem: String) {
        #expect(throws: ConfigError(key: key, problem: problem)) {
            try PayhookConfiguration.parse(yaml: yaml)
        }
    }

    @Test func errorsDoNotEchoValues() {
        do {
            _ = try PayhookConfiguration.parse(yaml: "database: {url: x}\nworker: {threads: s3cr3t}")
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("s3cr3t"))
        }
    }

    @Test func missingFileIsAnErrorNamingTheFlag() {
        #expect(throws: ConfigError(key: "--config", problem: "cannot read /nonexistent/payhook.yaml")) {
            try PayhookConfiguration.load(path: "/nonexistent/payhook.yaml", environment: [:])
        }
    }
}
