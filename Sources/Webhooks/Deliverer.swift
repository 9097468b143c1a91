public import AsyncHTTPClient
import Dispatch
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Postgres
import Synchronization

/// The delivery threads of a worker process: each with its own connection, claiming due
/// deliveries, sending them as concurrent requests, and finishing each batch of answers in
/// one fenced statement as they come in. A slow endpoint holds only its own in-flight
/// slots, never the thread: the thread keeps claiming for the others while it waits.
public final class Deliverer: Sendable {
    public let configuration: DeliveryConfiguration
    let endpoints: [String: WebhookEndpoint]
    let clients: [String: HTTPClient]
    let metrics: DeliveryMetrics
    let logger: Logger
    private let threads: ConnectionThreads
    private let wakeups: [Wakeup]

    /// Builds an HTTP client per endpoint (its own trust roots where it has a `ca_file`).
    public init(configuration: DeliveryConfiguration, metrics: DeliveryMetrics = DeliveryMetrics(),
                logger: Logger) throws {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        endpoints = Dictionary(configuration.endpoints.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var clients: [String: HTTPClient] = [:]
        for endpoint in configuration.endpoints {
            do {
                clients[endpoint.id] = try Self.client(for: endpoint)
            } catch {
                for client in clients.values { try? client.syncShutdown() }
                throw CAFileError(endpointID: endpoint.id, problem: "\(error)")
            }
        }
        self.clients = clients
        var connection = configuration.connection
        connection.settings.merge(Connection.genericPlans) { configured, _ in configured }
        threads = ConnectionThreads(configuration: connection)
        wakeups = (0..<configuration.threads).map { _ in Wakeup() }
    }

    /// An endpoint's `ca_file` that does not read as PEM certificates.
    public struct CAFileError: Error {
        public let endpointID: String
        public let problem: String
    }

    public static func client(for endpoint: WebhookEndpoint) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile = endpoint.caFile {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func start() {
        guard !endpoints.isEmpty else { return }
        spawn("payhook-deliver-listen") { self.runListener() }
        for index in 0..<configuration.threads {
            spawn("payhook-deliver-\(index)") { self.runThread(index: index) }
        }
        spawn("payhook-deliver-gauges") { self.runGauges() }
        if let retention = configuration.retention {
            spawn("payhook-deliver-retention") { self.runRetention(DeliveryRetention(settings: retention)) }
        }
        logger.info("webhook delivery started", metadata: [
            "worker": "\(configuration.workerName)", "threads": "\(configuration.threads)",
            "endpoints": "\(endpoints.keys.sorted().joined(separator: ","))",
        ])
    }

    /// Stops claiming; requests in flight are answered (or time out) and finished first.
    public func shutdown() async {
        await threads.stop { for wakeup in wakeups { wakeup.signal() } }
        for client in clients.values { try? await client.shutdown() }
    }

    var isStopping: Bool { threads.isStopping }

    private func spawn(_ name: String, _ body: @escaping @Sendable () -> Void) {
        threads.spawn(name, body)
    }

    /// Runs `body` with this thread's connection while `keepGoing()` (nil: until shutdown).
    private func withConnection(role: String, while keepGoing: (() -> Bool)? = nil,
                                _ body: (Connection) throws(PostgresError) -> Void) {
        threads.withConnection(while: keepGoing, onFailure: { error in
            metrics.databaseError()
            logger.error("database failure; reconnecting", metadata: [
                "worker": "\(configuration.workerName)", "role": "\(role)", "error": "\(error)",
            ])
        }, body)
    }

    private func runListener() {
        var listeningOn: ObjectIdentifier?  // a new connection after a failure must LISTEN again
        withConnection(role: "deliver-listener") { connection throws(PostgresError) in
            if listeningOn != ObjectIdentifier(connection) {
                try DeliveryStore.syncEndpoints(Array(endpoints.values).sorted { $0.id < $1.id }, on: connection)
                try connection.listen(WebhookSchema.notifyChannel)
                listeningOn = ObjectIdentifier(connection)
            }
            if !(try connection.waitForNotifications(timeout: configuration.pollInterval)).isEmpty {
                for wakeup in wakeups { wakeup.notify() }
            }
        }
    }

    private func runGauges() {
        withConnection(role: "deliver-gauges") { connection throws(PostgresError) in
            metrics.status(try DeliveryStatus.read(on: connection))
            threads.pause(.seconds(5))
        }
    }

    /// Every worker process runs one; the advisory lock lets one act at a time.
    private func runRetention(_ retention: DeliveryRetention) {
        withConnection(role: "deliver-retention") { connection throws(PostgresError) in
            if let report = try retention.run(on: connection) {
                metrics.pruned(report)
                if report.events > 0 || report.kept > 0 {
                    logger.info("delivered events past retention removed", metadata: [
                        "events": "\(report.events)", "deliveries": "\(report.deliveries)",
                        "attempts": "\(report.attempts)", "kept_undelivered": "\(report.kept)",
                    ])
                }
            }
            threads.pause(retention.settings.every)
        }
    }

    private func runThread(index: Int) {
        let store = DeliveryStore(workerID: "\(configuration.workerName)/deliver-\(index)",
                                  leaseSeconds: configuration.effectiveLeaseSeconds)
        let wakeup = wakeups[index]
        let answers = Answers(wakeup: wakeup)
        var inFlight: [String: Int] = [:]
        var disabled: [String: String] = [:]
        var disabledReadAt = ContinuousClock.now - .seconds(3600)
        // On shutdown, requests in flight are waited for (they end by their timeout), but not
        // past it: with the database gone their leases run out and another worker sends them.
        var giveUpAt: ContinuousClock.Instant?
        let longest = endpoints.values.map(\.timeout).max() ?? .seconds(15)
        let keepGoing = {
            guard self.isStopping else { return true }
            let now = ContinuousClock.now
            if giveUpAt == nil { giveUpAt = now + longest + .seconds(2) }
            return inFlight.values.contains { $0 > 0 } && now < giveUpAt!
        }
        // A claim is asked for only when there may be something to claim: after a notify,
        // after a claim that filled its room, or a poll interval after the last one (retries
        // come due by time, and leases run out). Answers alone wake the thread to finish.
        var mayHaveWork = true
        var claimedAt = ContinuousClock.now
        let disableAfter = Int64(ConnectionThreads.seconds(configuration.disableAfterFailing))
        withConnection(role: "deliver", while: keepGoing) {
            connection throws(PostgresError) in
            let now = ContinuousClock.now
            if now - disabledReadAt > configuration.pollInterval {
                disabled = try DeliveryStore.disabledEndpoints(on: connection)
                disabledReadAt = now
            }
            if wakeup.takeNotified() || now - claimedAt >= configuration.pollInterval { mayHaveWork = true }
            let finishes = answers.take()
            var room: [String: Int] = [:]
            if mayHaveWork && !isStopping {
                var finishing: [String: Int] = [:]
                for finish in finishes { finishing[finish.delivery.endpointID, default: 0] += 1 }
                for id in endpoints.keys where disabled[id] == nil {
                    room[id] = configuration.maxInFlightPerEndpoint - inFlight[id, default: 0] + finishing[id, default: 0]
                }
            }
            let wanted = room.values.reduce(0) { $0 + max($1, 0) }
            let result: DeliveryStore.FinishResult
            let claimed: [ClaimedDelivery]
            do throws(PostgresError) {
                (result, claimed) = try store.finishAndClaim(finishes, disableAfterFailingSeconds: disableAfter,
                                                             room: room, on: connection)
            } catch {
                answers.restore(finishes)  // written after the reconnect (the fence decides)
                throw error
            }
            if wanted > 0 {
                claimedAt = now
                mayHaveWork = claimed.count == wanted
            }
            if !finishes.isEmpty {
                for finish in finishes { inFlight[finish.delivery.endpointID, default: 1] -= 1 }
                record(finishes, result)
                disabled.merge(result.disabled) { current, _ in current }
            }
            for delivery in claimed {
                guard let endpoint = endpoints[delivery.endpointID], let client = clients[delivery.endpointID] else { continue }
                inFlight[delivery.endpointID, default: 0] += 1
                let schedule = configuration.retrySchedule
                Task {
                    answers.add(await Self.attempt(delivery, to: endpoint, client: client, schedule: schedule))
                }
            }
            if claimed.isEmpty && finishes.isEmpty { wakeup.wait(timeout: configuration.pollInterval) }
        }
    }

    private func record(_ finishes: [DeliveryStore.Finish], _ result: DeliveryStore.FinishResult) {
        for finish in finishes {
            let endpoint = finish.delivery.endpointID
            if result.refused.contains(finish.delivery.id) {
                metrics.attempt(endpoint: endpoint, outcome: "lease_lost")
                logger.warning("delivery lease lost; another worker owns it now", metadata: [
                    "endpoint": "\(endpoint)", "event_id": "\(finish.delivery.eventID)",
                ])
                continue
            }
            metrics.attempt(endpoint: endpoint, outcome: finish.outcome.label)
            switch finish.outcome {
            case .delivered:
                metrics.delivered(endpoint: endpoint, afterSeconds: Date().timeIntervalSince(finish.delivery.committedAt))
            case .dead:
                logger.error("webhook delivery dead after its last attempt", metadata: [
                    "endpoint": "\(endpoint)", "event_id": "\(finish.delivery.eventID)",
                    "status": "\(finish.statusCode.map(String.init) ?? "none")", "error": "\(finish.error ?? "")",
                ])
            default:
                break
            }
        }
        for (endpoint, reason) in result.disabled.sorted(by: { $0.key < $1.key }) {
            metrics.endpointDisabled(endpoint: endpoint, reason: reason)
            logger.error("webhook endpoint disabled; its deliveries wait until it is enabled", metadata: [
                "endpoint": "\(endpoint)", "reason": "\(reason)",
            ])
        }
    }

    /// One attempt: the signed POST, and what its answer means.
    static func attempt(_ delivery: ClaimedDelivery, to endpoint: WebhookEndpoint, client: HTTPClient,
                        schedule: DeliverySchedule) async -> DeliveryStore.Finish {
        let startedAt = Date()
        let clock = ContinuousClock.now
        let sent = await send(delivery.body, id: delivery.eventID, to: endpoint, client: client)
        let latency = ContinuousClock.now - clock
        let milliseconds = Int(latency.components.seconds * 1000 + latency.components.attoseconds / 1_000_000_000_000_000)
        let outcome: DeliveryOutcome
        switch DeliverySchedule.verdict(status: sent.status) {
        case .delivered: outcome = .delivered
        case .gone: outcome = .gone
        case .failed:
            var random = SystemRandomNumberGenerator()
            outcome = schedule.wait(afterFailedAttempt: Int(delivery.attempt), using: &random).map { .retry(afterSeconds: $0) } ?? .dead
        }
        return DeliveryStore.Finish(delivery: delivery, startedAt: startedAt, outcome: outcome, statusCode: sent.status,
                                    latencyMilliseconds: milliseconds, responseExcerpt: sent.excerpt, error: sent.error)
    }

    /// What one POST got: a status and the start of the body, or why there was none.
    public struct Sent: Sendable, Equatable {
        public var status: Int?
        public var excerpt: String?
        public var error: String?
    }

    /// Sends one signed event; shared with `payhook webhooks test`.
    public static func send(_ body: [UInt8], id: String, to endpoint: WebhookEndpoint, client: HTTPClient) async -> Sent {
        var request = HTTPClientRequest(url: endpoint.url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "payhook-webhooks")
        for header in endpoint.signer.headers(id: id, timestamp: Int64(Date().timeIntervalSince1970), body: body) {
            request.headers.add(name: header.name, value: header.value)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        let timeout = endpoint.timeout
        do {
            let response = try await client.execute(
                request, timeout: .milliseconds(timeout.components.seconds * 1000
                    + timeout.components.attoseconds / 1_000_000_000_000_000))
            var excerpt: [UInt8] = []
            var read = 0
            for try await chunk in response.body {
                if excerpt.count < 512 { excerpt += chunk.readableBytesView.prefix(512 - excerpt.count) }
                read += chunk.readableBytes
                if read > 65_536 { break }  // the rest is not read; the connection is not reused
            }
            return Sent(status: Int(response.status.code), excerpt: String(decoding: excerpt, as: UTF8.self), error: nil)
        } catch let error as HTTPClientError {
            return Sent(status: nil, excerpt: nil, error: "\(error)")
        } catch {
            return Sent(status: nil, excerpt: nil, error: "\(type(of: error)): \(error)")
        }
    }

    /// A signed `webhook.test` event, sent once (`payhook webhooks test`); its id and what it got.
    public static func sendTestEvent(to endpoint: WebhookEndpoint) async throws -> (id: String, sent: Sent) {
        let client = try client(for: endpoint)
        let id = "evt_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let now = ISO8601DateFormatter().string(from: Date())
        let body = Array(#"{"type":"webhook.test","timestamp":"\#(now)","data":{"event_id":"\#(id)"}}"#.utf8)
        let sent = await send(body, id: id, to: endpoint, client: client)
        try await client.shutdown()
        return (id, sent)
    }

}

/// What wakes a delivery thread: a notify of new deliveries (claim), or answers (finish).
private final class Wakeup: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let notified = Atomic<Bool>(false)

    /// New deliveries may be due: the thread claims on its next turn.
    func notify() {
        notified.store(true, ordering: .releasing)
        semaphore.signal()
    }

    func signal() { semaphore.signal() }

    func takeNotified() -> Bool { notified.exchange(false, ordering: .acquiringAndReleasing) }

    func wait(timeout: Duration) {
        _ = semaphore.wait(timeout: .now() + ConnectionThreads.seconds(timeout))
    }
}

/// Answers of requests in flight, handed from their tasks to the delivering thread.
private final class Answers: Sendable {
    private let finished = Mutex<[DeliveryStore.Finish]>([])
    private let wakeup: Wakeup

    init(wakeup: Wakeup) {
        self.wakeup = wakeup
    }

    /// Wakes the thread only for the first answer since it last took them: one turn
    /// finishes them all, so one wakeup per batch, not per answer.
    func add(_ finish: DeliveryStore.Finish) {
        let first = finished.withLock { finished in
            finished.append(finish)
            return finished.count == 1
        }
        if first { wakeup.signal() }
    }

    func restore(_ finishes: [DeliveryStore.Finish]) {
        finished.withLock { $0.insert(contentsOf: finishes, at: 0) }
    }

    func take() -> [DeliveryStore.Finish] {
        finished.withLock { finished in
            defer { finished.removeAll() }
            return finished
        }
    }
}
