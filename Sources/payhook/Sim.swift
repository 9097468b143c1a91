import ArgumentParser
import Foundation
import PayhookConfig
import Receiver
import Postgres
import Simulator
import SiteAPI
import UnixSignals
import Workers

struct Sim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stand in for the payment channels (order creation, close, query, buyer pages, notifies), the site's webhook endpoint, and a load generator.",
        subcommands: [SimChannels.self, SimSite.self, SimLoad.self])
}

/// The folder shared by `sim channels` and `sim load`.
struct SimDirectoryOption: ParsableArguments {
    @Option(name: .long, help: "Folder for the generated keys, simulator.json and payhook.yaml.")
    var dir: String = ".run/sim"
}

struct SimChannels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channels",
        abstract: "Serve simulated Alipay, WeChat Pay and points channels; write their keys and a ready payhook.yaml.",
        discussion: """
            Each channel creates, closes and answers queries for orders, serves the buyer's pages \
            (Alipay cashier and scanned QR code, WeChat Pay phone) whose Pay button sends the signed \
            notify, and takes control calls under /_sim/ (pay, trades, notify and call faults). \
            Keys are generated once into --dir and reused by later runs; payhook.yaml is rewritten \
            on every start (it is generated). Runs until SIGTERM or SIGINT.
            """)

    @OptionGroup var directory: SimDirectoryOption

    @Option(help: "Port of the simulated channel APIs (0: any free port).")
    var port: Int = 8090

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(name: .customLong("database-url"), help: "database.url for payhook.yaml (default: PAYHOOK_DATABASE_URL, else postgres://payhook@127.0.0.1:5432/payhook).")
    var databaseURL: String?

    @Option(help: "receiver.listen for payhook.yaml.")
    var listen: String = "127.0.0.1:8080"

    @Option(name: .customLong("api-listen"), help: "api.listen (the site API) for payhook.yaml; none for no site API.")
    var apiListen: String = "127.0.0.1:8081"

    @Option(name: .customLong("error-rate"), help: "Fraction of queries answered 500.")
    var errorRate: Double = 0

    @Option(name: .customLong("timeout-rate"), help: "Fraction of queries never answered in time.")
    var timeoutRate: Double = 0

    @Option(name: .customLong("latency-ms"), help: "Milliseconds added to every answer.")
    var latencyMilliseconds: Int = 0

    @Option(name: .customLong("notify-never-rate"), help: "Fraction of payment notifies never sent.")
    var notifyNeverRate: Double = 0

    @Option(name: .customLong("notify-twice-rate"), help: "Fraction of payment notifies sent twice.")
    var notifyTwiceRate: Double = 0

    @Option(name: .customLong("cross-check"), help: "Every channel's cross_check in payhook.yaml: always or when_unverified.")
    var crossCheck: String = "always"
    @Flag(help: "Serve HTTPS with a CA the simulator makes (DIR/ca.pem, kept); payhook.yaml trusts it (ca_file) instead of insecure_http.")
    var tls = false
    @Flag(name: .customLong("alipay-cert-mode"), help: "Alipay in certificate mode: certificates made at each start (DIR/keys/*.crt), payhook.yaml with alipay_cert_mode: true; POST /_sim/alipay/rotate-cert reissues Alipay's.")
    var alipayCertMode = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard (0...1).contains(errorRate), (0...1).contains(timeoutRate), errorRate + timeoutRate <= 1 else {
            throw ValidationError("--error-rate and --timeout-rate must be fractions from 0 to 1 that add up to at most 1")
        }
        guard latencyMilliseconds >= 0 else { throw ValidationError("--latency-ms must be ≥ 0") }
        guard CrossCheck(name: crossCheck) != nil else {
            throw ValidationError("--cross-check must be \(CrossCheck.names.joined(separator: " or "))")
        }
        guard (0...1).contains(notifyNeverRate), (0...1).contains(notifyTwiceRate), notifyNeverRate + notifyTwiceRate <= 1 else {
            throw ValidationError("--notify-never-rate and --notify-twice-rate must be fractions from 0 to 1 that add up to at most 1")
        }
    }

    func run() async throws {
        let directory = SimulatorDirectory(path: directory.dir)
        var channels = directory.hasKeys ? try directory.loadKeys().channels : SimulatedChannels.generate()
        if alipayCertMode {
            channels.alipayCertificates = try SimulatedAlipayCertificates(appKey: channels.alipayAppKey, alipayKey: channels.alipayKey)
        }
        let simulator = ChannelSimulator(channels: channels, defaultBehaviour: DefaultQueryBehaviour(
            errorRate: errorRate, timeoutRate: timeoutRate, latency: .milliseconds(latencyMilliseconds)))
        simulator.defaultNotifyBehaviour = DefaultNotifyBehaviour(neverSentRate: notifyNeverRate, sentTwiceRate: notifyTwiceRate)
        let server = try await ChannelSimulatorServer.start(simulator, host: host, port: port,
                                                            tls: tls ? directory.serverTLS() : nil)
        try directory.writeKeys(channels, baseURL: server.baseURL)
        let database = databaseURL ?? ProcessInfo.processInfo.environment["PAYHOOK_DATABASE_URL"]
            ?? "postgres://payhook@127.0.0.1:5432/payhook"
        let file = try directory.writeConfiguration(
            channels, baseURL: server.baseURL,
            options: .init(databaseURL: database, receiverListen: listen,
                           apiListen: apiListen == "none" ? nil : apiListen,
                           crossCheck: crossCheck == "always" ? nil : crossCheck))
        print("simulated channel APIs at \(server.baseURL) (alipay, wechatpay, points)")
        print("configuration: \(file)")
        print("keys:          \(directory.keysDirectory)")
        if tls { print("CA (ca_file):  \(directory.caFile)") }
        print("stop with Ctrl-C or SIGTERM")

        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        for await _ in signals { break }
        await server.stop()
    }
}

struct SimSite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "site",
        abstract: "Play the site's application: receive Payhook's webhooks, verify and deduplicate them.",
        discussion: """
            Writes DIR/site.json and a webhook secret; start it before `payhook sim channels`, whose \
            payhook.yaml then names it as the webhook endpoint `site`. GET /site/events shows what \
            arrived. Runs until SIGTERM or SIGINT.
            """)

    @OptionGroup var directory: SimDirectoryOption

    @Option(help: "Port (0: any free port).")
    var port: Int = 8095

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(name: .customLong("fail-rate"), help: "Fraction of deliveries answered 503.")
    var failRate: Double = 0

    @Option(name: .customLong("slow-ms"), help: "Milliseconds before every answer.")
    var slowMilliseconds: Int = 0

    @Option(name: .customLong("down-seconds"), help: "Answer 503 to everything for this long after starting.")
    var downSeconds: Double = 0

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard (0...1).contains(failRate) else { throw ValidationError("--fail-rate must be a fraction from 0 to 1") }
        guard slowMilliseconds >= 0, downSeconds >= 0 else { throw ValidationError("--slow-ms and --down-seconds must be ≥ 0") }
    }

    func run() async throws {
        let directory = SimulatorDirectory(path: directory.dir)
        var faults = SimulatedSite.Faults()
        faults.failRate = failRate
        faults.slowMilliseconds = slowMilliseconds
        faults.downSeconds = downSeconds
        let site = SimulatedSite(signer: try directory.siteSigner(), faults: faults)
        let server = try await site.start(host: host, port: port)
        try directory.writeSite(url: server.webhookURL)
        print("simulated site receiving webhooks at \(server.webhookURL)")
        print("what arrived:  GET http://\(host):\(server.port)/site/events")
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        for await _ in signals { break }
        let tally = site.tally
        print("events \(tally.events.count), deliveries accepted \(tally.accepted) (\(tally.duplicates) repeats), "
              + "refused signatures \(tally.refusedSignatures), failed on purpose \(tally.failedOnPurpose)")
        await server.stop()
    }
}

struct SimLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Send a mix of signed, duplicated, forged and tampered notifies to a receiver, then check the database.",
        discussion: """
            Needs `payhook sim channels --dir DIR` running (it answers the workers' queries; the \
            run registers its orders there) and the receiver at --url. Exits 1 on any mismatch.
            """)

    @OptionGroup var directory: SimDirectoryOption

    @Option(help: "The receiver (default: receiver.listen of DIR/payhook.yaml).")
    var url: String?

    @Option(help: "Orders to create; duplicates add a second send.")
    var orders: Int = 1000

    @Option(help: "Concurrent connections.")
    var connections: Int = 32

    @Option(help: "Sends per second (default: as fast as the receiver answers).")
    var rate: Double?

    @Option(help: "Mix of notify kinds, kind=weight,…")
    var mix: String = LoadMix.realistic.description

    @Option(name: .customLong("database-url"), help: "The database (default: database.url of DIR/payhook.yaml, after PAYHOOK_* overrides).")
    var databaseURL: String?

    @Option(name: .customLong("sim-url"), help: "The channel simulator (default: the base URL in DIR/simulator.json).")
    var simURL: String?

    @Option(name: .customLong("wait-seconds"), help: "How long to wait for the queue to finish the run's callbacks.")
    var waitSeconds: Int = 60

    @Flag(name: .customLong("through-api"), help: "Create the orders through the site API (api.listen of DIR/payhook.yaml), as a site does, instead of inserting them.")
    var throughAPI = false

    @Option(name: .customLong("retry-seconds"), help: "Resend a notify that got no answer or a 5xx, as a channel does, for up to this many seconds after its first send.")
    var retrySeconds: Int = 0

    @Option(name: .customLong("sends-file"), help: "Write one CSV line per send (sequence, order, kind, channel, wall-clock send time, HTTP status, microseconds to the answer) here.")
    var sendsFile: String?

    func validate() throws {
        guard orders > 0 else { throw ValidationError("--orders must be positive") }
        guard (1...4096).contains(connections) else { throw ValidationError("--connections must be 1 to 4096") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        guard waitSeconds >= 0 else { throw ValidationError("--wait-seconds must be ≥ 0") }
        guard retrySeconds >= 0 else { throw ValidationError("--retry-seconds must be ≥ 0") }
        do { _ = try LoadMix.parse(mix) } catch { throw ValidationError(error.description) }
    }

    func run() async throws {
        let directory = SimulatorDirectory(path: directory.dir)
        let (channels, simulatorBaseURL) = try directory.loadKeys()
        let configuration = try? PayhookConfiguration.load(path: directory.configurationFile)
        guard let database = databaseURL ?? configuration?.database.url else {
            throw ValidationError("no --database-url and no readable \(directory.configurationFile)")
        }
        let receiverURL = url ?? configuration.map { "http://\($0.receiver.host):\($0.receiver.port)" } ?? "http://127.0.0.1:8080"
        let mix = try LoadMix.parse(mix)
        // The simulator over HTTPS (`sim channels --tls`) is trusted through its CA.
        let simulatorURL = simURL ?? simulatorBaseURL
        let simulatorCA = simulatorURL.lowercased().hasPrefix("https://") ? directory.caFile : nil

        let factory = NotifyFactory(channels: channels, oversizeBytes: configuration?.receiver.maxBodyBytes ?? 65536)
        let signingStart = ContinuousClock.now
        let plan = await LoadPlan.make(factory: factory, mix: mix, count: orders)
        printError("run \(plan.runID): signed \(plan.sends.count) notifies for \(plan.orders.count) orders in \(seconds(ContinuousClock.now - signingStart))")

        var connection = try Connection(database)
        if throughAPI {
            guard let configuration, let api = configuration.api else {
                throw ValidationError("--through-api needs api.listen in \(directory.configurationFile)")
            }
            let token = try String(contentsOfFile: configuration.admin.tokenFile, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try await plan.createOrders(apiURL: "http://\(api.host):\(api.port)", token: token,
                                        simulatorURL: simulatorURL, simulatorCAFile: simulatorCA)
        } else {
            try LoadCheck.insertOrders(plan, on: connection)
        }
        try await plan.register(withSimulatorAt: simulatorURL, caFile: simulatorCA)
        printError("orders created and registered with the simulator at \(simulatorURL)")

        let runner = LoadRunner(options: .init(receiverURL: receiverURL, connections: connections, rate: rate,
                                                  retryFor: .seconds(retrySeconds)))
        let result = try await runner.run(plan) { progress in
            let elapsed = max(0.001, Double(progress.elapsed.components.seconds) + Double(progress.elapsed.components.attoseconds) / 1e18)
            printError(String(format: "\rsent %d (%.0f/s)  acked %d  refused %d  errors %d  resent %d   ",
                              progress.sent, Double(progress.sent) / elapsed, progress.acknowledged, progress.refused, progress.errors,
                              progress.retried),
                       newline: false)
        }
        printError("")
        printSendSummary(plan, result)
        if let sendsFile {
            try Data(result.sendsCSV(plan).utf8).write(to: URL(fileURLWithPath: sendsFile), options: .atomic)
        }

        // A fresh connection for the checks: the database may have restarted while sending.
        connection = try Connection(database)
        let drained = try await LoadCheck.waitForDrain(plan, on: connection, timeout: .seconds(waitSeconds)) { unfinished in
            printError("\rwaiting for the queue: \(unfinished) of the run's callbacks unfinished   ", newline: false)
        }
        printError("")
        var report = try LoadCheck.check(plan, statuses: result.statuses, sentAt: result.sentAt, on: connection)
        printReport(report, drained: drained)
        if let siteURL = directory.siteURL, configuration?.webhooks.contains(where: { $0.id == "site" }) == true {
            let delivered = try await LoadCheck.waitForDeliveries(plan, on: connection, timeout: .seconds(waitSeconds)) {
                printError("\rwaiting for webhooks: \($0) of the run's deliveries undelivered   ", newline: false)
            }
            printError("")
            let webhooks = try await LoadCheck.checkWebhooks(plan, siteURL: siteURL, on: connection)
            print(delivered ? "webhooks:      the run's deliveries are all delivered" : "webhooks:      NOT all delivered within --wait-seconds")
            print("  events the site got \(webhooks.events), repeats deduplicated \(webhooks.repeats)")
            for mismatch in webhooks.mismatches.prefix(10) {
                print("  \(mismatch.category): \(mismatch.outTradeNo) \(mismatch.detail)")
            }
            report.mismatches += webhooks.mismatches
        }
        if !report.mismatches.isEmpty { throw ExitCode(1) }
    }

    private func printSendSummary(_ plan: LoadPlan, _ result: LoadRunner.Result) {
        let elapsed = Double(result.duration.components.seconds) + Double(result.duration.components.attoseconds) / 1e18
        print("sent:          \(plan.sends.count) in \(String(format: "%.2f", elapsed)) s (\(String(format: "%.0f", Double(plan.sends.count) / max(elapsed, 0.001)))/s)")
        let counts = result.statusCounts.sorted { ($0.key ?? 0) < ($1.key ?? 0) }
        if result.progress.retried > 0 { print("resent:        \(result.progress.retried) (no answer or 5xx, then sent again)") }
        print("answers:       " + counts.map { "\($0.key.map(String.init) ?? "none") × \($0.value)" }.joined(separator: ", "))
        let l = result.latencies
        print("latency:       p50 \(ms(l.p50))  p90 \(ms(l.p90))  p99 \(ms(l.p99))  max \(ms(l.maximum))")
    }

    private func printReport(_ report: LoadCheck.Report, drained: Bool) {
        print(drained ? "queue:         the run's callbacks are all finished" : "queue:         NOT drained within --wait-seconds")
        print("orders by kind of notify:")
        for kind in NotifyKind.allCases {
            guard let statuses = report.orderStatuses[kind] else { continue }
            let expected = kind.paysOrder ? "paid" : "created"
            print("  \(kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) expected \(expected.padding(toLength: 8, withPad: " ", startingAt: 0)) "
                  + statuses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        print("callbacks by state/reason:")
        for (outcome, count) in report.callbackOutcomes.sorted(by: { $0.key < $1.key }) {
            print("  \(outcome.padding(toLength: 28, withPad: " ", startingAt: 0)) \(count)")
        }
        if report.droppedByRetention > 0 {
            print("  \("dropped by retention".padding(toLength: 28, withPad: " ", startingAt: 0)) \(report.droppedByRetention)")
        }
        if report.mismatches.isEmpty {
            print("mismatches:    none")
            return
        }
        print("mismatches:    \(report.mismatches.count)")
        for (category, count) in report.mismatchCounts.sorted(by: { $0.key < $1.key }) {
            print("  \(category): \(count)")
            for mismatch in report.mismatches.filter({ $0.category == category }).prefix(5) {
                print("    \(mismatch.outTradeNo): \(mismatch.detail)")
            }
        }
    }
}

private func ms(_ microseconds: Int64) -> String { String(format: "%.2f ms", Double(microseconds) / 1000) }

private func seconds(_ duration: Duration) -> String {
    String(format: "%.2f s", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
}

private func printError(_ text: String, newline: Bool = true) {
    FileHandle.standardError.write(Data((text + (newline ? "\n" : "")).utf8))
}
