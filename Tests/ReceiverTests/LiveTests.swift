import AsyncHTTPClient
import CallbackQueue
import Workers
import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import NIOHTTP1
import HummingbirdTesting
import NIOCore
import PayhookCore
import Postgres
import PostgresTestSupport
import Receiver
import Testing

/// Over real sockets: what is stored is exactly what was sent, and acknowledged callbacks
/// survive a database crash and a `kill -9` of the receiver.
@Suite struct LiveTests {
    @Test func storedRowHoldsExactlyTheBytesAndHeadersSent() async throws {
        let harness = try ReceiverHarness()
        let body = Array("charset=gbk&subject=%D6%D0&sign=a+b/c==&x=".utf8) + [0x00, 0xC8, 0xFF]
        try await harness.application().test(.live) { client in
            try await client.execute(
                uri: "/notify/alipay?from=gw", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded; charset=gbk",
                          HTTPField.Name("X-Repeat")!: "one", HTTPField.Name("X-Repeat")!: "two",
                          HTTPField.Name("X-Forwarded-For")!: "6.6.6.6"],
                body: ByteBuffer(bytes: body)) { #expect($0.status == .ok) }
        }
        let rows = try harness.storedRows()
        #expect(rows.count == 1)
        #expect(rows[0].body == body)
        #expect(rows[0].query == "from=gw")
        #expect(rows[0].sourceIP == "127.0.0.1")  // the peer is not a trusted proxy: XFF ignored
        let headers = rows[0].headers
        let repeats = headers.enumerated().filter { $0.element.name == "X-Repeat" }
        #expect(repeats.map(\.element.value) == ["one", "two"])
        #expect(repeats.count == 2 && repeats[1].offset == repeats[0].offset + 1, "in arrival order, side by side")
        #expect(headers.contains(.init(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=gbk")))
        #expect(headers.first?.name == "Host")
    }

    /// Header values that are not UTF-8 are stored as their bytes, on every request of a
    /// pipelined connection, whatever the framing of the bodies between them.
    @Test func headerValuesThatAreNotUTF8AreStoredAsTheirBytes() async throws {
        let harness = try ReceiverHarness()
        let odd: [UInt8] = [0xFF, 0xFE, 0xC3, 0x28, 0x20, 0x6F, 0x6B]
        var stream = Array("POST /notify/alipay HTTP/1.1\r\nX-Odd: ".utf8) + odd
        stream += Array("\r\nHost: 127.0.0.1\r\nContent-Length: 9\r\n\r\nab\r\n\r\ncd\n".utf8)
        stream += Array("POST /notify/wechatpay HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nX-Odd: \u{E9}".utf8)
        stream += [0xC8] + Array("\r\n\r\n4\r\nwxyz\r\nA\r\n0123456789\r\n0\r\n\r\n".utf8)
        stream += Array("POST /notify/alipay HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Plain: caf\u{E9}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nz".utf8)
        try await harness.application().test(.live) { [stream] client in
            let socket = try RawClient(port: try #require(client.port))
            socket.send(stream)
            let answers = socket.readUntilClosed()
            // Answers follow each other directly ("success" has no line end).
            let statuses = answers.matches(of: /HTTP\/1\.1 (\d{3})/).map { String($0.1) }
            #expect(statuses == ["200", "204", "200"], "each acknowledged")
        }
        let rows = try harness.storedRows()
        #expect(rows.map(\.body) == [Array("ab\r\n\r\ncd\n".utf8), Array("wxyz0123456789".utf8), Array("z".utf8)])
        guard rows.count == 3 else { return }
        #expect(rows[0].headers.map(\.name) == ["X-Odd", "Host", "Content-Length"], "in arrival order, Host included")
        #expect(rows[0].headers[0].bytes == odd)
        #expect(rows[1].headers.first { $0.name == "X-Odd" }?.bytes == Array("\u{E9}".utf8) + [0xC8])
        #expect(rows[2].headers.first { $0.name == "X-Plain" }?.value == "caf\u{E9}", "UTF-8 stays as it was")
    }

    @Test func trustedProxyForwardedForIsBelieved() async throws {
        let harness = try ReceiverHarness(trustedProxies: ["127.0.0.1/32"])
        try await harness.application().test(.live) { client in
            try await client.execute(uri: "/notify/alipay", method: .post,
                                     headers: [HTTPField.Name("X-Forwarded-For")!: "6.6.6.6, 198.51.100.7"],
                                     body: ByteBuffer(string: "a=1")) { #expect($0.status == .ok) }
        }
        #expect(try harness.storedRows().first?.sourceIP == "198.51.100.7")
    }

    /// Streams notifies through a live receiver while its database is killed and
    /// restarted: every 200 has its row, the outage answered 503, and the receiver recovers.
    @Test(.timeLimit(.minutes(2))) func databaseCrashLosesNoAcknowledgedCallback() async throws {
        let cluster = try TestCluster.start()
        defer { cluster.remove() }
        try Connection(cluster.url()).query("CREATE DATABASE payhook")
        let url = cluster.url(database: "payhook")
        try PayhookSchema.migrate(on: try Connection(url))
        let harness = try ReceiverHarness(databaseURL: url)
        let tally = Locked(StreamTally())
        try await harness.application().test(.live) { client in
            let stop = Locked(false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for producer in 0..<8 {
                    group.addTask {
                        var index = producer * 1_000_000
                        while !stop.value {
                            index += 1
                            let body = "notify_id=\(index)&total_amount=1.00"
                            let status = try await client.execute(uri: "/notify/alipay", method: .post,
                                                                  body: ByteBuffer(string: body)) { $0.status }
                            tally.withLock { $0.record(status: status.code, body: body) }
                            if status != .ok { try await Task.sleep(for: .milliseconds(20)) }
                        }
                    }
                }
                try await Task.sleep(for: .seconds(1))
                try cluster.crash()
                try await Task.sleep(for: .seconds(1))
                try cluster.restart()
                tally.withLock { $0.restarted = true }
                try await Task.sleep(for: .seconds(2))
                stop.withLock { $0 = true }
                try await group.waitForAll()
            }
        }
        let result = tally.value
        #expect(result.acknowledged.count > 50)
        #expect(result.unavailable > 0, "requests during the outage must get 503")
        #expect(result.otherStatuses.isEmpty)
        #expect(result.acknowledgedAfterRestart > 0, "the receiver must recover by itself")
        let stored = Set(try Connection(url).query("SELECT body FROM callback_payloads").rows.map {
            String(decoding: try $0.decode(0, as: [UInt8].self), as: UTF8.self)
        })
        #expect(result.acknowledged.isSubset(of: stored), "every acknowledged callback must be stored")
    }

    /// `kill -9` of a `payhook serve` process in the middle of a stream: every callback it
    /// acknowledged is in the table.
    @Test(.timeLimit(.minutes(2))) func killedReceiverLosesNoAcknowledgedCallback() async throws {
        let (status, result, stored) = try await streamThenSignal(SIGKILL)
        #expect(status & 0x7f == SIGKILL)
        #expect(result.acknowledged.count >= 200)
        #expect(result.transportErrors > 0, "requests after the kill must fail")
        #expect(result.acknowledged.isSubset(of: stored), "every acknowledged callback must be stored")
    }

    /// SIGTERM during a stream: the receiver stops accepting, answers what it has, exits 0.
    @Test(.timeLimit(.minutes(2))) func sigtermShutsDownGracefully() async throws {
        let (status, result, stored) = try await streamThenSignal(SIGTERM)
        #expect(status == 0, "a graceful shutdown exits 0")
        #expect(result.acknowledged.count >= 200)
        #expect(result.otherStatuses.isEmpty)
        #expect(result.acknowledged.isSubset(of: stored), "every acknowledged callback must be stored")
    }

    /// Runs `payhook serve` as a process, streams notifies at it from 8 connections, sends
    /// `signal` once 200 were acknowledged, and returns the exit status, the tally and the
    /// stored bodies.
    private func streamThenSignal(_ signal: Int32) async throws -> (Int32, StreamTally, Set<String>) {
        let database = try TestDatabase.create()
        let port = try freeLoopbackPort()
        let configFile = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-\(UUID()).yaml")
        try ReceiverHarness.yaml(databaseURL: database.url, port: port).write(to: configFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: configFile) }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-serve-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let server = try ChildProcess(executable: ChildProcess.payhookExecutable,
                                      arguments: ["serve", "--config", configFile.path], environment: [:],
                                      outputFile: log)
        let http = HTTPClient(eventLoopGroupProvider: .singleton,
                              configuration: .init(timeout: .init(connect: .seconds(1), read: .seconds(3))))
        let tally = Locked(StreamTally())
        let stop = Locked(false)
        var status: Int32 = -1
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<8 {
                group.addTask {
                    var index = producer * 1_000_000
                    while !stop.value {
                        index += 1
                        let body = "notify_id=\(index)&total_amount=1.00"
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/notify/alipay")
                        request.method = .POST
                        request.body = .bytes(ByteBuffer(string: body))
                        do {
                            let response = try await http.execute(request, timeout: .seconds(3))
                            let text = String(buffer: try await response.body.collect(upTo: 1024))
                            tally.withLock {
                                $0.record(status: Int(response.status.code), body: body)
                                if response.status == .ok && text != "success" { $0.otherStatuses.append(-1) }
                            }
                        } catch {
                            tally.withLock { $0.transportErrors += 1 }
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
            }
            // Wait until it answers and has taken load, then signal it.
            for _ in 0..<200 where tally.value.acknowledged.count < 200 { try await Task.sleep(for: .milliseconds(50)) }
            server.signal(signal)
            status = server.wait()
            try await Task.sleep(for: .milliseconds(300))
            stop.withLock { $0 = true }
            try await group.waitForAll()
        }
        try await http.shutdown()
        if tally.value.acknowledged.isEmpty {
            // Say why the server never answered (its own log, no payloads in it).
            Issue.record("payhook serve answered nothing; its log: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "-")")
        }
        let stored = Set(try database.connect().query("SELECT body FROM callback_payloads").rows.map {
            String(decoding: try $0.decode(0, as: [UInt8].self), as: UTF8.self)
        })
        return (status, tally.value, stored)
    }

    /// A client that sends headers and part of its body, then stalls, is cut off after the
    /// read timeout, and nothing is stored.
    @Test(.timeLimit(.minutes(1))) func stalledClientIsCutOff() async throws {
        let harness = try ReceiverHarness()
        try await harness.application().test(.live) { client in
            guard let port = client.port else { return }
            let socket = try RawClient(port: port)
            socket.send("POST /notify/alipay HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nonly-part")
            let start = ContinuousClock.now
            let answer = socket.readUntilClosed()
            #expect(ContinuousClock.now - start < .seconds(6), "read_timeout_seconds is 2")
            #expect(!answer.contains("200 OK"))
        }
        #expect(try harness.storedRows().isEmpty)
    }

    /// A declared Content-Length over `max_body_bytes` is refused from the headers alone:
    /// the 413 comes while the body has not been sent at all, and nothing is stored.
    @Test(.timeLimit(.minutes(1))) func declaredOversizeIsRefusedBeforeTheBody() async throws {
        let harness = try ReceiverHarness(maxBodyBytes: 4096)
        try await harness.application().test(.live) { client in
            guard let port = client.port else { return }
            let socket = try RawClient(port: port)
            socket.send("POST /notify/alipay HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n")
            let start = ContinuousClock.now
            let head = socket.readHead()
            #expect(head.hasPrefix("HTTP/1.1 413"), "got: \(head.prefix(40))")
            #expect(ContinuousClock.now - start < .seconds(1), "read_timeout_seconds is 2: it did not wait for a body")
        }
        #expect(try harness.storedRows().isEmpty)
    }
}

/// A raw TCP client: sends bytes as given, and can stop halfway through a request.
final class RawClient {
    let descriptor: Int32

    /// Connects from `source` (a loopback address such as 127.0.0.2) when given.
    init(port: Int, from source: String? = nil) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { throw TestSupportError("bind to \(source) failed") }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestSupportError("connect failed") }
    }

    deinit { close(descriptor) }

    @discardableResult
    func send(_ text: String) -> Bool {
        send(Array(text.utf8))
    }

    /// Sends all of `bytes` (blocking); false once the server has closed. Never raises SIGPIPE.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBufferPointer {
                Glibc.send(descriptor, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL))
            }
            if count <= 0 { return false }
            sent += count
        }
        return true
    }

    /// Reads until the end of a response head (or 10 s pass).
    func readHead() -> String {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var byte: UInt8 = 0
        while !received.suffix(4).elementsEqual("\r\n\r\n".utf8), read(descriptor, &byte, 1) == 1 {
            received.append(byte)
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Reads until the server closes the connection (or 10 s pass).
    func readUntilClosed() -> String {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}

struct StreamTally: Sendable {
    var acknowledged: Set<String> = []
    var unavailable = 0
    var transportErrors = 0
    var otherStatuses: [Int] = []
    var restarted = false
    var acknowledgedAfterRestart = 0

    mutating func record(status: Int, body: String) {
        switch status {
        case 200:
            acknowledged.insert(body)
            if restarted { acknowledgedAfterRestart += 1 }
        case 503: unavailable += 1
        default: otherStatuses.append(status)
        }
    }
}
