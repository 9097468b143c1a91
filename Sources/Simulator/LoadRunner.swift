import AsyncHTTPClient
import Channels
public import Foundation
import PayhookCore
import NIOCore
import NIOHTTP1
import Synchronization

/// Sends a ``LoadPlan``'s notifies to a receiver with a fixed number of connections, at a
/// target rate or as fast as the receiver answers.
public struct LoadRunner: Sendable {
    public struct Options: Sendable {
        /// The receiver, e.g. `http://127.0.0.1:8080`.
        public var receiverURL: String
        /// Concurrent requests (and connections). Default 32.
        public var connections: Int
        /// Sends per second; nil: as fast as answers come. Default nil.
        public var rate: Double?
        /// One request's deadline. Default 10 s.
        public var requestTimeout: Duration
        /// Resend a notify that got no answer or a 5xx until this long after its first send,
        /// as a channel resends until it is acknowledged (a receiver restarting, the database
        /// down). Default zero: send once.
        public var retryFor: Duration

        public init(receiverURL: String, connections: Int = 32, rate: Double? = nil, requestTimeout: Duration = .seconds(10),
                    retryFor: Duration = .zero) {
            self.receiverURL = receiverURL
            self.connections = connections
            self.rate = rate
            self.requestTimeout = requestTimeout
            self.retryFor = retryFor
        }
    }

    /// Counts so far, for the progress line.
    public struct Progress: Sendable {
        public var sent = 0
        /// Answered 2xx.
        public var acknowledged = 0
        /// Answered with any other status.
        public var refused = 0
        /// No answer: connection failure or timeout.
        public var errors = 0
        /// Resends of sends that got no answer or a 5xx (`retryFor`).
        public var retried = 0
        public var elapsed: Duration = .zero
    }

    /// What came back for each send, by sequence.
    public struct Result: Sendable {
        /// The HTTP status per send; nil: no answer.
        public var statuses: [Int?]
        /// When each send began, wall clock (so it can be set beside PostgreSQL's `now()`); nil: not sent.
        public var sentAt: [Date?]
        /// Per send, by sequence, microseconds from sending to the whole answer; nil: no answer.
        public var answerMicroseconds: [Int64?]
        /// Per answered send, microseconds from sending to the whole answer.
        public var latencies: LatencySummary
        public var duration: Duration
        public var progress: Progress

        /// One CSV line per send, header first: `sequence,out_trade_no,kind,channel,sent_at,status,latency_us`,
        /// `sent_at` in seconds since 1970 with microseconds, `status` and `latency_us` (microseconds
        /// from sending to the whole answer) empty without an answer. The end-to-end and soak
        /// benchmarks join it with `order_events` to measure send-to-paid, and take per-minute
        /// acknowledgement percentiles from `latency_us`.
        public func sendsCSV(_ plan: LoadPlan) -> String {
            var out = "sequence,out_trade_no,kind,channel,sent_at,status,latency_us\n"
            out.reserveCapacity(72 * plan.sends.count)
            for send in plan.sends {
                let order = plan.orders[send.orderIndex]
                let sent = send.sequence < sentAt.count ? sentAt[send.sequence] : nil
                let status = send.sequence < statuses.count ? statuses[send.sequence] : nil
                let latency = send.sequence < answerMicroseconds.count ? answerMicroseconds[send.sequence] : nil
                out += "\(send.sequence),\(order.outTradeNo),\(order.kind),\(order.channel),"
                out += sent.map { String(format: "%.6f", $0.timeIntervalSince1970) } ?? ""
                out += "," + (status.map(String.init) ?? "") + "," + (latency.map(String.init) ?? "") + "\n"
            }
            return out
        }

        /// Sends per HTTP status (`nil` key: no answer).
        public var statusCounts: [Int?: Int] {
            statuses.reduce(into: [:]) { $0[$1, default: 0] += 1 }
        }
    }

    public let options: Options

    struct Shared {
        var next = 0
        var statuses: [Int?]
        var sentAt: [Date?]
        var answerMicroseconds: [Int64?]
        var latencies: [Int64] = []
        var progress = Progress()
    }

    /// The senders' common counters; a class so the concurrent senders can share the lock.
    final class SharedLoadState: Sendable {
        private let mutex: Mutex<Shared>
        init(_ value: Shared) { mutex = Mutex(value) }
        func withLock<R: Sendable>(_ body: (inout Shared) -> R) -> R { mutex.withLock { body(&$0) } }
    }

    public init(options: Options) { self.options = options }

    /// Whether a channel would send this notify again: no answer, or the receiver's 5xx.
    public static func resends(_ status: Int?) -> Bool { status.map { (500..<600).contains($0) } ?? true }

    /// The pause before resend number `attempt` (1-based): 250 ms doubling, at most 2 s.
    public static func resendDelay(_ attempt: Int) -> Duration {
        .milliseconds(250 << min(max(attempt - 1, 0), 3))
    }

    /// Sends everything, calling `progress` about once a second from a background task.
    public func run(_ plan: LoadPlan, progress report: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> Result {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60),
                                             concurrentHTTP1ConnectionsPerHostSoftLimit: options.connections)
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let base = SimulatedChannels.trimmed(options.receiverURL)
        let timeoutMilliseconds = options.requestTimeout.components.seconds * 1000
            + options.requestTimeout.components.attoseconds / 1_000_000_000_000_000
        let requests = plan.sends.map { send in
            var request = HTTPClientRequest(url: "\(base)/notify/\(send.notify.channel)?\(plan.marker(send.sequence))")
            request.method = .POST
            for field in send.notify.headers { request.headers.add(name: field.name, value: field.value) }
            request.body = .bytes(ByteBuffer(bytes: send.notify.body))
            return request
        }

        let shared = SharedLoadState(Shared(statuses: [Int?](repeating: nil, count: requests.count),
                                            sentAt: [Date?](repeating: nil, count: requests.count),
                                            answerMicroseconds: [Int64?](repeating: nil, count: requests.count)))
        let clock = ContinuousClock()
        let start = clock.now
        let interval: Duration? = options.rate.map { .nanoseconds(Int64(1_000_000_000 / max($0, 0.001))) }

        let reporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                var snapshot = shared.withLock { $0.progress }
                snapshot.elapsed = clock.now - start
                report(snapshot)
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, options.connections) {
                group.addTask {
                    while true {
                        let index = shared.withLock { state -> Int? in
                            guard state.next < requests.count else { return nil }
                            defer { state.next += 1 }
                            return state.next
                        }
                        guard let index else { return }
                        if let interval {
                            // Open loop: each send has its slot in time, whatever the answers before it took.
                            try? await clock.sleep(until: start.advanced(by: interval * index))
                        }
                        let firstSent = clock.now
                        let sentAtWall = Date()
                        var status: Int? = nil
                        var attemptStart = firstSent
                        var resend = 0
                        while true {
                            attemptStart = clock.now
                            do {
                                let response = try await client.execute(requests[index], timeout: .milliseconds(timeoutMilliseconds))
                                _ = try await response.body.collect(upTo: 1 << 20)
                                status = Int(response.status.code)
                            } catch {
                                status = nil
                            }
                            guard Self.resends(status), clock.now < firstSent.advanced(by: options.retryFor) else { break }
                            resend += 1
                            shared.withLock { $0.progress.retried += 1 }
                            try? await clock.sleep(for: Self.resendDelay(resend))
                        }
                        // The latency is the last attempt's; the send time stays the first's.
                        let latency = clock.now - attemptStart
                        shared.withLock { state in
                            state.statuses[index] = status
                            state.sentAt[index] = sentAtWall
                            state.progress.sent += 1
                            switch status {
                            case nil: state.progress.errors += 1
                            case let code? where (200..<300).contains(code): state.progress.acknowledged += 1
                            default: state.progress.refused += 1
                            }
                            if status != nil {
                                let microseconds = latency.components.seconds * 1_000_000
                                    + latency.components.attoseconds / 1_000_000_000_000
                                state.answerMicroseconds[index] = microseconds
                                state.latencies.append(microseconds)
                            }
                        }
                    }
                }
            }
        }
        reporter.cancel()
        let duration = clock.now - start
        try await client.shutdown()
        var final = shared.withLock { $0 }
        final.progress.elapsed = duration
        return Result(statuses: final.statuses, sentAt: final.sentAt, answerMicroseconds: final.answerMicroseconds,
                      latencies: LatencySummary(microseconds: final.latencies),
                      duration: duration, progress: final.progress)
    }
}
