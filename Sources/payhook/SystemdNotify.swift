import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// systemd's readiness protocol (sd_notify(3)) for `Type=notify` units: newline-separated
/// `KEY=VALUE` lines in one AF_UNIX datagram to `$NOTIFY_SOCKET`, a path or, with a leading
/// `@`, a name in Linux's abstract namespace. No Swift package does this and it is one
/// datagram, so it is written out here rather than linking libsystemd. Without the variable
/// (not started by systemd) every call does nothing.
struct SystemdNotifier: Sendable {
    enum Address: Equatable, Sendable {
        case path(String)
        case abstract(String)
    }

    /// Where the datagrams go; nil when `$NOTIFY_SOCKET` is unset or not an address we can use.
    let address: Address?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        address = Self.address(environment["NOTIFY_SOCKET"])
    }

    init(address: Address?) {
        self.address = address
    }

    var isEnabled: Bool { address != nil }

    /// The socket address `NOTIFY_SOCKET` names: an absolute path, or `@name` for the abstract
    /// namespace. Unset, empty, relative, too long for `sun_path` (or systemd's newer `vsock:`
    /// addresses, which Payhook does not speak): nil.
    static func address(_ value: String?) -> Address? {
        guard let value, let first = value.first else { return nil }
        let address: Address
        switch first {
        case "/": address = .path(value)
        case "@" where value.count > 1: address = .abstract(String(value.dropFirst()))
        default: return nil
        }
        return socketAddress(address) == nil ? nil : address
    }

    /// The lines of one message, in the order given: `READY=1\nSTATUS=...`. A value's newlines
    /// would start a new field, so they become spaces.
    static func message(_ fields: [(key: String, value: String)]) -> String {
        fields.map { "\($0.key)=\($0.value.replacingOccurrences(of: "\n", with: " "))" }.joined(separator: "\n")
    }

    /// `sockaddr_un` for `address` and the length to pass with it: a path ends in its NUL; an
    /// abstract name starts with a NUL and is exactly as long as its bytes (no terminator,
    /// as systemd binds it). Nil when the name does not fit `sun_path`.
    static func socketAddress(_ address: Address) -> (address: sockaddr_un, length: socklen_t)? {
        var bytes: [UInt8]
        switch address {
        case .path(let path): bytes = Array(path.utf8) + [0]
        case .abstract(let name): bytes = [0] + Array(name.utf8)
        }
        var socketAddress = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: socketAddress.sun_path)
        guard bytes.count <= capacity else { return nil }
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { path in
            path.copyBytes(from: bytes)
        }
        let length = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + bytes.count
        return (socketAddress, socklen_t(length))
    }

    /// Sends `fields` as one datagram; false when there is nowhere to send or sending failed.
    @discardableResult
    func notify(_ fields: [(key: String, value: String)]) -> Bool {
        guard let address, let (target, length) = Self.socketAddress(address) else { return false }
        var socketAddress = target
        #if os(Linux)
        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let type = SOCK_DGRAM
        #endif
        let fd = socket(AF_UNIX, type, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(Self.message(fields).utf8)
        let sent = withUnsafePointer(to: &socketAddress) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, target, length) }
            }
        }
        return sent == message.count
    }

    func ready(status: String) { notify([("READY", "1"), ("STATUS", status)]) }
    func stopping() { notify([("STOPPING", "1"), ("STATUS", "stopping")]) }
}

/// Sends `READY=1` once every part of a process has reported in (`serve`: each listener;
/// `work`: the pool's connections and the metrics listener; `run`: all of them).
final class StartupGate: Sendable {
    private let waiting: Mutex<Set<String>>
    private let notifier: SystemdNotifier
    private let status: String
    private let logger: Logger

    init(parts: Set<String>, status: String, notifier: SystemdNotifier = SystemdNotifier(), logger: Logger) {
        waiting = Mutex(parts)
        self.notifier = notifier
        self.status = status
        self.logger = logger
    }

    /// `part` is up; the last one sends `READY=1`.
    func arrived(_ part: String) {
        let last = waiting.withLock { waiting in waiting.remove(part) != nil && waiting.isEmpty }
        guard last else { return }
        logger.info("ready", metadata: ["status": "\(status)"])
        notifier.ready(status: status)
    }

    /// `arrived(part)` as a closure, for the listeners' and the pool's callbacks.
    func report(_ part: String) -> @Sendable () -> Void {
        { self.arrived(part) }
    }
}

/// The last service of a group, so the first told of a graceful shutdown (the group tells its
/// services in reverse order): sends `STOPPING=1` as soon as SIGTERM or SIGINT arrives.
struct StoppingNotice: Service {
    let notifier: SystemdNotifier

    func run() async throws {
        try? await gracefulShutdown()
        notifier.stopping()
    }
}
