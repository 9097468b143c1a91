public import Foundation

/// A child process started with posix_spawn (Foundation's Process can hang in
/// `waitUntilExit` when called from a task on Linux), its output discarded or written to a file.
public final class ChildProcess: Sendable {
    public let pid: pid_t

    public init(executable: String, arguments: [String], environment: [String: String], outputFile: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputFile ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard status == 0 else { throw TestSupportError("posix_spawn \(executable) failed: \(status)") }
        self.pid = pid
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the exit and returns the raw wait status.
    @discardableResult
    public func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// Runs `payhook ARGUMENTS` to the end; returns its exit status and what it printed.
    public static func payhook(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-cli-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let child = try ChildProcess(executable: payhookExecutable, arguments: arguments, environment: environment,
                                     outputFile: file)
        let status = child.wait()
        let output = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
    }

    /// The same, waiting on a thread of its own: a test that serves HTTP in-process (the
    /// simulator, the simulated site) must not block a thread of the cooperative pool, which
    /// on two cores has two, while the child calls those servers.
    public static func payhookAsync(_ arguments: [String],
                                    environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        try await onOwnThread { try payhook(arguments, environment: environment) }
    }

    /// The built `payhook` executable, beside the test bundle.
    public static var payhookExecutable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("payhook").path
    }
}

/// Runs blocking work (libpq calls that may wait on locks, a child process) on a thread of
/// its own and awaits it, so the cooperative pool (two threads on two cores) stays free.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// A loopback TCP port free at this moment: the kernel's pick for port 0.
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket failed: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    guard bound else { throw TestSupportError("bind failed: \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
