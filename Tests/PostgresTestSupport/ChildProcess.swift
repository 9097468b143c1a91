public import Foundation

/// A child process started with posix_spawn (Foundation's Process can hang in
/// `waitUntilExit` when called from a task on Linux), output discarded.
public final class ChildProcess: Sendable {
    public let pid: pid_t

    public init(executable: String, arguments: [String], environment: [String: String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
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

    /// The built `payhook` executable, beside the test bundle.
    public static var payhookExecutable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("payhook").path
    }
}
