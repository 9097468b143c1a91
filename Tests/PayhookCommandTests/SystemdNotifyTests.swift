import Foundation
import Logging
@testable import payhook
import Postgres
import PostgresTestSupport
import Testing

/// The `NOTIFY_SOCKET` address and message rules, without a socket.
@Suite struct SystemdNotifyFormatTests {
    @Test func addressesAreAbsolutePathsOrAbstractNames() {
        #expect(SystemdNotifier.address(nil) == nil)
        #expect(SystemdNotifier.address("") == nil)
        #expect(SystemdNotifier.address("@") == nil)
        #expect(SystemdNotifier.address("run/notify") == nil, "relative paths are refused, as sd_notify does")
        #expect(SystemdNotifier.address("vsock:2:1234") == nil)
        #expect(SystemdNotifier.address("/run/systemd/notify") == .path("/run/systemd/notify"))
        #expect(SystemdNotifier.address("@/org/systemd/notify/42") == .abstract("/org/systemd/notify/42"))
        #expect(SystemdNotifier.address("/" + String(repeating: "a", count: 106)) != nil, "107 bytes and a NUL fit sun_path")
        #expect(SystemdNotifier.address("/" + String(repeating: "a", count: 107)) == nil)
        #expect(SystemdNotifier.address("@" + String(repeating: "a", count: 107)) != nil, "a NUL and 107 bytes fit")
        #expect(SystemdNotifier.address("@" + String(repeating: "a", count: 108)) == nil)
    }

    @Test func unsetVariableMeansNoOp() {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.isEnabled)
        #expect(!notifier.notify([("READY", "1")]))
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x"]).address == .path("/run/x"))
    }

    @Test func socketAddressBytesAndLength() throws {
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let (path, pathLength) = try #require(SystemdNotifier.socketAddress(.path("/run/n")))
        #expect(path.sun_family == sa_family_t(AF_UNIX))
        #expect(Int(pathLength) == offset + 7, "the path and its NUL")
        #expect(withUnsafeBytes(of: path.sun_path) { Array($0.prefix(7)) } == Array("/run/n".utf8) + [0])
        let (abstract, abstractLength) = try #require(SystemdNotifier.socketAddress(.abstract("sd/1")))
        #expect(Int(abstractLength) == offset + 5, "a leading NUL and the name, no terminator")
        #expect(withUnsafeBytes(of: abstract.sun_path) { Array($0.prefix(5)) } == [0] + Array("sd/1".utf8))
    }

    @Test func messagesAreNewlineSeparatedFields() {
        #expect(SystemdNotifier.message([("READY", "1")]) == "READY=1")
        #expect(SystemdNotifier.message([("READY", "1"), ("STATUS", "two\nlines")]) == "READY=1\nSTATUS=two lines")
    }

    @Test func gateSendsReadyOnceEveryPartArrived() throws {
        let listener = try NotifyListener(abstract: true)
        let gate = StartupGate(parts: ["receiver", "api"], status: "up", notifier: SystemdNotifier(address: listener.address),
                               logger: .init(label: "test"))
        gate.arrived("receiver")
        gate.arrived("receiver")
        #expect(listener.next(timeout: 0.2) == nil)
        gate.arrived("api")
        #expect(listener.next(timeout: 5) == "READY=1\nSTATUS=up")
        gate.arrived("api")
        #expect(listener.next(timeout: 0.2) == nil, "READY=1 is sent once")
    }
}

/// The built `payhook` under a pretend systemd: a datagram socket of the test's own as
/// `NOTIFY_SOCKET`, READY=1 once the process can serve, STOPPING=1 when SIGTERM arrives.
@Suite(.timeLimit(.minutes(2))) struct SystemdNotifyProcessTests {
    @Test func serveIsReadyOnceBothListenersAnswer() async throws {
        let listener = try NotifyListener(abstract: false)
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (receiverPort, apiPort) = (try freeLoopbackPort(), try freeLoopbackPort())
        try "test-token\n".write(toFile: "\(directory)/admin.token", atomically: true, encoding: .utf8)
        // Nothing listens on the database's port: the listeners do not wait for it (/readyz tells).
        try """
        database: {url: "postgres://payhook@127.0.0.1:1/payhook?connect_timeout=1"}
        receiver: {listen: "127.0.0.1:\(receiverPort)"}
        admin: {token_file: "\(directory)/admin.token"}
        api: {listen: "127.0.0.1:\(apiPort)"}
        site: {public_base_url: "https://pay.example.com"}
        """.write(toFile: "\(directory)/payhook.yaml", atomically: true, encoding: .utf8)
        let process = try ChildProcess(executable: ChildProcess.payhookExecutable,
                                       arguments: ["serve", "--config", "\(directory)/payhook.yaml"],
                                       environment: ["NOTIFY_SOCKET": listener.variable],
                                       outputFile: "\(directory)/serve.log")
        let ready = try await onOwnThread { listener.next(timeout: 60) }
        #expect(ready?.split(separator: "\n").first == "READY=1", "\(log(directory, "serve"))")
        // By READY=1 both ports answer.
        #expect(httpStatus(port: receiverPort, path: "/healthz") == 200)
        #expect(httpStatus(port: apiPort, path: "/v1/orders/x") == 401)
        process.signal(SIGTERM)
        let stopping = try await onOwnThread { listener.next(timeout: 30) }
        #expect(stopping?.split(separator: "\n").first == "STOPPING=1")
        let status = try await onOwnThread { process.wait() }
        #expect(status == 0, "a graceful shutdown exits 0")
    }

    @Test func workIsReadyOnceItHasItsConnections() async throws {
        let database = try TestDatabase.create()
        defer { database.drop() }
        let listener = try NotifyListener(abstract: true)
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        database: {url: "\(database.url)"}
        worker: {threads: 3, poll_interval_ms: 100}
        """.write(toFile: "\(directory)/payhook.yaml", atomically: true, encoding: .utf8)
        let process = try ChildProcess(executable: ChildProcess.payhookExecutable,
                                       arguments: ["work", "--config", "\(directory)/payhook.yaml"],
                                       environment: ["NOTIFY_SOCKET": listener.variable],
                                       outputFile: "\(directory)/work.log")
        let ready = try await onOwnThread { listener.next(timeout: 60) }
        #expect(ready?.split(separator: "\n").first == "READY=1", "\(log(directory, "work"))")
        // Three workers, the listener, the gauges, the sweeper and the partition maintainer.
        let connections = try database.connect().query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        #expect(try connections[0].decode(0, as: Int.self) >= 7)
        process.signal(SIGTERM)
        let stopping = try await onOwnThread { listener.next(timeout: 30) }
        #expect(stopping?.split(separator: "\n").first == "STOPPING=1")
        let status = try await onOwnThread { process.wait() }
        #expect(status == 0)
    }

    private func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-notify-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func log(_ directory: String, _ name: String) -> String {
        (try? String(contentsOfFile: "\(directory)/\(name).log", encoding: .utf8)) ?? ""
    }

    /// The status of `GET path` on a loopback port, over a plain blocking socket; nil when nothing answers.
    private func httpStatus(port: Int, path: String) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 12 else { return nil }
        // "HTTP/1.1 200 OK"
        return Int(String(decoding: buffer[9..<12], as: UTF8.self))
    }
}

/// A unix datagram socket standing in for systemd's notify socket: at a path, or a name
/// in the abstract namespace.
final class NotifyListener: Sendable {
    let fd: Int32
    let address: SystemdNotifier.Address
    private let path: String?

    init(abstract: Bool) throws {
        let name = "payhook-test-\(UUID().uuidString.prefix(8))"
        let path = abstract ? nil : FileManager.default.temporaryDirectory.appendingPathComponent("\(name).sock").path
        address = path.map { .path($0) } ?? .abstract(name)
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket failed: \(errno)") }
        guard let (target, length) = SystemdNotifier.socketAddress(address) else { throw TestSupportError("bad address") }
        var socketAddress = target
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw TestSupportError("bind failed: \(errno)") }
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }

    /// `NOTIFY_SOCKET`'s value for this socket.
    var variable: String {
        switch address {
        case .path(let path): path
        case .abstract(let name): "@" + name
        }
    }

    /// The next datagram, or nil after `timeout` seconds without one.
    func next(timeout: Double) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count < 0 ? nil : String(decoding: buffer[0..<count], as: UTF8.self)
    }
}
