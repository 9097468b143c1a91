import Foundation
import Glibc
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Postgres
import Prometheus
import PostgresTestSupport
import Receiver
import Testing
import Workers

/// The receiver's edge over real sockets and a real database: a flood from outside the
/// allowlist, `enforce_allowed_ips`, slow requests, oversize heads, and the log during an
/// outage. Loopback addresses other than 127.0.0.1 stand in for other hosts.
@Suite struct EdgeTests {
    /// A flood from an address outside `allowed_ips` while a channel's own server sends at a
    /// steady rate: the channel keeps its rate with no 429, and the flood stores only its
    /// budget (burst + rate x time).
    @Test(.timeLimit(.minutes(2))) func floodOutsideTheAllowlistStoresOnlyItsBudget() async throws {
        let harness = try ReceiverHarness(allowedIPs: ["127.0.0.1/32"], receiverSettings: [
            "outside_allowlist_per_second: 5", "outside_allowlist_burst: 20",
        ])
        let duration = 3.0
        let legitimate = Locked([Int: Int]())
        let flood = Locked([Int: Int]())
        let floodTime = Locked(0.0)
        let legitimateTime = Locked(0.0)
        try await harness.application().test(.live) { client in
            let port = try #require(client.port)
            try await onThreads(5) { thread in
                if thread < 2 {
                    // The channel's server: 40 a second on each of two connections, paced.
                    guard let socket = try? RawClient(port: port) else { return }
                    let start = Date()
                    for index in 0..<Int(duration * 40) {
                        let due = start.addingTimeInterval(Double(index) / 40)
                        if due > Date() { Thread.sleep(until: due) }
                        let status = socket.exchange(notify("legit-\(thread)-\(index)")) ?? -1
                        legitimate.withLock { $0[status, default: 0] += 1 }
                    }
                    let elapsed = Date().timeIntervalSince(start)
                    legitimateTime.withLock { $0 = max($0, elapsed) }
                } else {
                    guard let socket = try? RawClient(port: port, from: "127.0.0.2") else { return }
                    let start = Date()
                    var index = 0
                    while Date().timeIntervalSince(start) < duration {
                        index += 1
                        let status = socket.exchange(notify("flood-\(thread)-\(index)")) ?? -1
                        flood.withLock { $0[status, default: 0] += 1 }
                    }
                    let elapsed = Date().timeIntervalSince(start)
                    floodTime.withLock { $0 = max($0, elapsed) }
                }
            }
        }
        let planned = 2 * Int(duration * 40)
        let stored = try harness.database.connect().query(
            "SELECT host(source_ip), count(*) FROM callbacks GROUP BY 1").rows.map {
            (try $0.decode(0, as: String.self), try $0.decode(1, as: Int64.self))
        }
        let storedFrom = Dictionary(uniqueKeysWithValues: stored)
        // On two shared cores the flood's own client takes CPU from PostgreSQL: a commit may
        // pass the 1 s commit timeout (503, which the channel retries), but never a 429.
        let legitimateStatuses = legitimate.value
        #expect(legitimateStatuses[429] == nil, "the channel's own server is never limited: \(legitimateStatuses)")
        #expect(Set(legitimateStatuses.keys).isSubset(of: [200, 503]))
        #expect(legitimateStatuses.values.reduce(0, +) == planned)
        #expect(Double(legitimateStatuses[200, default: 0]) >= 0.95 * Double(planned), "\(legitimateStatuses)")
        #expect(legitimateTime.value < duration + 2, "at its rate (40/s on each connection): \(legitimateTime.value) s")
        let floodStatuses = flood.value
        let budget = 20 + 5 * floodTime.value + 2
        #expect(floodStatuses[429, default: 0] > 100, "the flood was refused: \(floodStatuses)")
        #expect(Set(floodStatuses.keys).isSubset(of: [200, 429, 503]))
        #expect(Double(floodStatuses[200, default: 0] + floodStatuses[503, default: 0]) <= budget)
        #expect(floodStatuses[200, default: 0] + floodStatuses[503, default: 0] >= 20, "the flood got its burst")
        #expect(storedFrom["127.0.0.2", default: 0] >= Int64(floodStatuses[200, default: 0]))
        #expect(Double(storedFrom["127.0.0.2", default: 0]) <= budget, "the queue grew by the flood's budget only: \(stored)")
        #expect(storedFrom["127.0.0.1", default: 0] >= Int64(legitimateStatuses[200, default: 0]), "every acknowledged one stored")
        let metrics = harness.registry.emitToString()
        #expect(metrics.contains(#"payhook_receiver_refused_total{channel="alipay",reason="address_rate"}"#))
        #expect(metrics.contains(#"payhook_receiver_requests_total{channel="alipay",status="429"}"#))
    }

    /// The 429 is in the channel's failure format, and the channel cap holds every address.
    @Test func channelCapAnswers429InTheChannelsFormat() async throws {
        let harness = try ReceiverHarness(receiverSettings: ["channel_max_per_second: 3"])
        try await harness.application().test(.live) { client in
            let port = try #require(client.port)
            let socket = try RawClient(port: port)
            var statuses: [Int] = []
            var lastBody = ""
            for index in 0..<10 {
                socket.send(notify("cap-\(index)", channel: "wechatpay"))
                let (status, body) = socket.readResponse()
                statuses.append(status ?? -1)
                if status == 429 { lastBody = body }
            }
            #expect(statuses.filter { $0 == 204 }.count >= 3 && statuses.filter { $0 == 204 }.count <= 4)
            #expect(statuses.filter { $0 == 429 }.count >= 6)
            #expect(lastBody.contains(#""code":"FAIL""#))
        }
        #expect(try harness.storedRows().count <= 4)
        #expect(harness.registry.emitToString().contains(#"payhook_receiver_refused_total{channel="wechatpay",reason="channel_rate"}"#))
    }

    /// `enforce_allowed_ips`: a notify from outside is answered 403 in the channel's format and
    /// nothing is stored; the channel's own address and a buyer's browser return pass.
    @Test func enforcedAllowlistRefusesOutsideNotifiesWith403() async throws {
        let harness = try ReceiverHarness(allowedIPs: ["127.0.0.1/32"], receiverSettings: ["enforce_allowed_ips: true"])
        try await harness.application().test(.live) { client in
            let port = try #require(client.port)
            let outside = try RawClient(port: port, from: "127.0.0.3")
            outside.send(notify("outside-1", channel: "wechatpay"))
            let (status, body) = outside.readResponse()
            #expect(status == 403)
            #expect(body.contains(#""code":"FAIL""#))
            outside.send(notify("outside-2", channel: "alipay"))
            let alipay = outside.readResponse()
            #expect(alipay.status == 403 && alipay.body == "fail")
            outside.send("GET /return/alipay?out_trade_no=T1 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(outside.readResponse().status == 200, "a browser return is not held to allowed_ips")
            let inside = try RawClient(port: port)
            inside.send(notify("inside-1", channel: "wechatpay"))
            #expect(inside.readResponse().status == 204)
        }
        let rows = try harness.storedRows()
        #expect(rows.map(\.kind).sorted() == ["notify", "return"])
        #expect(!rows.contains { $0.kind == "notify" && $0.sourceIP == "127.0.0.3" }, "nothing from outside stored")
        #expect(harness.registry.emitToString().contains(
            #"payhook_receiver_refused_total{channel="wechatpay",reason="outside_allowlist"} 1"#))
    }

    /// Bodies (and heads) sent a byte at a time, faster than any idle timeout: every
    /// connection is cut at the read timeout (2 s here), nothing is stored, and the server's
    /// descriptors are freed. A request that arrives whole in time, in pieces, is stored.
    @Test(.timeLimit(.minutes(1))) func slowRequestsAreCutAtTheReadTimeout() async throws {
        let harness = try ReceiverHarness()
        struct Outcome: Sendable {
            var closedAt: [TimeInterval] = []
            var answered = 0
            var wholeStatus: Int?
            var descriptors: (baseline: Int, cut: Int, closed: Int) = (0, 0, 0)
        }
        let outcome = Locked(Outcome())
        let slowCount = 40
        try await harness.application().test(.live) { client in
            let port = try #require(client.port)
            try await onThreads(1) { _ in
                let baseline = openDescriptors()
                var slow: [RawClient] = []
                for index in 0..<slowCount {
                    guard let socket = try? RawClient(port: port) else { continue }
                    if index < 30 {
                        socket.send("POST /notify/alipay HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\na")
                    } else {
                        socket.send("POST /notify/alipay HTTP/1.1\r\nHo")
                    }
                    slow.append(socket)
                }
                guard let whole = try? RawClient(port: port) else { return }
                let start = Date()
                var closedAt: [Int: TimeInterval] = [:]
                var answered = 0
                var tick = 0
                while closedAt.count < slow.count && Date().timeIntervalSince(start) < 12 {
                    Thread.sleep(forTimeInterval: 0.25)
                    tick += 1
                    // The whole request: three pieces over one second.
                    if tick == 1 { whole.send("POST /notify/alipay HTTP/1.1\r\nHost: x\r\nContent-") }
                    if tick == 2 { whole.send("Length: 5\r\n\r\nwh") }
                    if tick == 4 { whole.send("ole") }
                    // A byte every 250 ms each: Hummingbird's idle timeout never fires.
                    for (index, socket) in slow.enumerated() where closedAt[index] == nil {
                        switch socket.poll() {
                        case .open: socket.send(index < 30 ? "b" : "s")
                        case .data: answered += 1; closedAt[index] = Date().timeIntervalSince(start)
                        case .closed: closedAt[index] = Date().timeIntervalSince(start)
                        }
                    }
                }
                let wholeStatus = whole.readResponse().status
                // The clients still hold their ends; the server's ends must be closed.
                let held = slow.count + 1
                var cut = openDescriptors()
                for _ in 0..<20 where cut > baseline + held + 4 {
                    Thread.sleep(forTimeInterval: 0.1)
                    cut = openDescriptors()
                }
                slow.removeAll()
                let closed = openDescriptors() - 1  // `whole` is still open
                outcome.withLock {
                    $0 = Outcome(closedAt: Array(closedAt.values), answered: answered, wholeStatus: wholeStatus,
                                 descriptors: (baseline, cut - held, closed))
                }
            }
        }
        let result = outcome.value
        #expect(result.wholeStatus == 200, "a request whole within the timeout is taken")
        #expect(result.closedAt.count == slowCount, "every slow connection cut")
        #expect(result.answered == 0, "cut, not answered")
        #expect((result.closedAt.min() ?? 0) >= 1.0, "not before the read timeout (2 s)")
        #expect((result.closedAt.max() ?? 99) <= 8.0, "at the read timeout (2 s), not when the sender stops: \(result.closedAt.max() ?? 99)")
        let fds = result.descriptors
        #expect(fds.cut <= fds.baseline + 4, "the server's descriptors freed: \(fds)")
        #expect(fds.closed <= fds.baseline + 4, "back to the baseline: \(fds)")
        let rows = try harness.storedRows()
        #expect(rows.map(\.body) == [Array("whole".utf8)], "nothing of the slow requests stored")
        let metrics = harness.registry.emitToString()
        let cut = metrics.firstMatch(of: /payhook_receiver_read_timeouts_total (\d+)/).flatMap { Int($0.1) } ?? 0
        #expect(cut >= 30, "counted: \(cut)")
    }

    /// A head over the decoder's limits (one field too large, or too many fields) is answered
    /// 431, and nothing is stored.
    @Test(.timeLimit(.minutes(1))) func oversizeHeadsAre431() async throws {
        let harness = try ReceiverHarness()
        try await harness.application().test(.live) { client in
            let port = try #require(client.port)
            let large = try RawClient(port: port)
            large.send("POST /notify/alipay HTTP/1.1\r\nHost: x\r\nX-Large: \(String(repeating: "a", count: 90 * 1024))\r\n"
                       + "Content-Length: 1\r\n\r\nz")
            let head = large.readHead()
            #expect(head.hasPrefix("HTTP/1.1 431"), "got: \(head.prefix(40))")
            let many = try RawClient(port: port)
            let fields = (0..<1100).map { "X-F\($0): 1\r\n" }.joined()
            many.send("POST /notify/alipay HTTP/1.1\r\nHost: x\r\n\(fields)Content-Length: 1\r\n\r\nz")
            let manyHead = many.readHead()
            #expect(manyHead.hasPrefix("HTTP/1.1 431"), "got: \(manyHead.prefix(40))")
            #expect(manyHead.lowercased().contains("connection: close"))
            let normal = try RawClient(port: port)
            normal.send(notify("after"))
            #expect(normal.readResponse().status == 200)
        }
        #expect(try harness.storedRows().map(\.body) == [Array("notify_id=after".utf8)])
        #expect(harness.registry.emitToString().contains("payhook_receiver_headers_too_large_total 2"))
    }

    /// A database crashed for three seconds under a stream of notifies: each is answered 503,
    /// and the log says so a few times a second, each line with how many it left out, every
    /// refused request written or counted.
    @Test(.timeLimit(.minutes(2))) func outageLogStaysAFewLinesASecondWithTheCount() async throws {
        let cluster = try TestCluster.start()
        defer { cluster.remove() }
        try Connection(cluster.url()).query("CREATE DATABASE payhook")
        let url = cluster.url(database: "payhook")
        try PayhookSchema.migrate(on: try Connection(url))
        let lines = CollectedLines()
        let logger = Logger(label: "payhook.receiver") {
            RateLimitedLogHandler(wrapping: DeferredMetadataLogHandler(label: $0, stream: lines))
        }
        let harness = try ReceiverHarness(databaseURL: url, logger: logger)
        let unavailable = Locked(0)
        let acknowledged = Locked(0)
        let stop = Locked(false)
        let outage = Locked(Duration.zero)
        try await harness.application().test(.live) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for producer in 0..<8 {
                    group.addTask {
                        var index = 0
                        while !stop.value {
                            index += 1
                            let status = try await client.execute(uri: "/notify/alipay", method: .post,
                                                                  body: ByteBuffer(string: "n=\(producer)-\(index)")) { $0.status }
                            switch status {
                            case .serviceUnavailable: unavailable.withLock { $0 += 1 }
                            case .ok: acknowledged.withLock { $0 += 1 }
                            default: Issue.record("unexpected \(status)")
                            }
                        }
                    }
                }
                try await Task.sleep(for: .milliseconds(500))
                let crashed = ContinuousClock.now
                try cluster.crash()
                try await Task.sleep(for: .seconds(3))
                try cluster.restart()
                outage.withLock { $0 = ContinuousClock.now - crashed }
                try await Task.sleep(for: .seconds(1))
                stop.withLock { $0 = true }
                try await group.waitForAll()
            }
        }
        // The last interval's count is written once it is over.
        try await Task.sleep(for: .milliseconds(1500))
        let refused = unavailable.value
        let seconds = Int(outage.value.components.seconds) + 1
        let receiverLines = lines.all.filter { $0.contains("callback not stored") }
        #expect(refused > 50, "the outage refused requests: \(refused)")
        #expect(acknowledged.value > 0)
        // Two places write while the database is away, the receiver and the enqueuer: each its
        // first line, then one a second (and the server's start line).
        #expect(lines.all.count <= 2 * (seconds + 3) + 1, "a few lines a second, not one a request: \(lines.all.count)")
        #expect(receiverLines.count >= 2)
        #expect(receiverLines.count + receiverLines.map(suppressedCount).reduce(0, +) == refused,
                "every refused request written or counted")
        #expect(!lines.all.contains { $0.contains("n=0-") }, "no bodies in the log")
    }
}

/// A notify for `channel` with a small form body.
func notify(_ id: String, channel: String = "alipay") -> String {
    let body = "notify_id=\(id)"
    return "POST /notify/\(channel) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
}

/// The descriptors this process has open (client and server ends alike).
func openDescriptors() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Runs `body` on `count` threads of their own (blocking socket work stays off Swift's
/// cooperative pool, which also runs the server's handlers) and returns when all are done.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async throws {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let left = Locked(count)
        for index in 0..<count {
            Thread {
                body(index)
                if left.withLock({ $0 -= 1; return $0 }) == 0 { continuation.resume() }
            }.start()
        }
    }
}

extension RawClient {
    enum PollState { case open, data, closed }

    /// Whether the server has answered, closed, or neither (without waiting).
    func poll() -> PollState {
        var byte: UInt8 = 0
        let count = recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count > 0 { return .data }
        if count == 0 { return .closed }
        return errno == EAGAIN || errno == EWOULDBLOCK ? .open : .closed
    }

    /// Reads one response: its status and its body (by Content-Length).
    func readResponse() -> (status: Int?, body: String) {
        let head = readHead()
        let status = head.firstMatch(of: /^HTTP\/1\.1 (\d{3})/).flatMap { Int($0.1) }
        let length = head.lowercased().firstMatch(of: /content-length: *(\d+)/).flatMap { Int($0.1) } ?? 0
        var body: [UInt8] = []
        var byte: UInt8 = 0
        while body.count < length, read(descriptor, &byte, 1) == 1 { body.append(byte) }
        return (status, String(decoding: body, as: UTF8.self))
    }

    /// Sends a request and reads its response's status; nil when the connection failed.
    func exchange(_ request: String) -> Int? {
        guard send(request) else { return nil }
        return readResponse().status
    }
}
