/// A configuration problem, naming the key (`worker.threads`, `channels[1].app_id`) and
/// what is wrong with it. Values are never echoed: they may be secrets.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let key: String
    public let problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String { "config: \(key): \(problem)" }
}
