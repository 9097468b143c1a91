package import Hummingbird
import HummingbirdTLS
package import Logging
package import NIOSSL
import ServiceLifecycle

/// A Hummingbird application run in a task of its own; `start` returns once the socket is
/// bound (on port 0, with the port the system picked) and throws if it cannot bind. The
/// simulated channels and the simulated site both serve this way (and tests' small servers);
/// with `tls`, over HTTPS.
package final class BoundServer: Sendable {
    package let port: Int
    private let task: Task<Void, any Error>
    private let group: ServiceGroup

    private init(port: Int, task: Task<Void, any Error>, group: ServiceGroup) {
        self.port = port
        self.task = task
        self.group = group
    }

    package static func start<Responder: HTTPResponder>(_ responder: Responder, host: String, port: Int, name: String,
                                                        tls: TLSConfiguration? = nil,
                                                        logger: Logger = Logger(label: "payhook.sim")) async throws -> BoundServer
    where Responder.Context == BasicRequestContext {
        let (bound, continuation) = AsyncStream<Result<Int, any Error>>.makeStream()
        let application = Application(
            responder: responder, server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in continuation.yield(.success(channel.localAddress?.port ?? port)) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let task = Task {
            do {
                try await group.run()
                continuation.yield(.failure(SimulatorError("\(name) stopped before it was bound")))
            } catch {
                continuation.yield(.failure(error))
                throw error
            }
        }
        for await result in bound {
            return BoundServer(port: try result.get(), task: task, group: group)
        }
        throw SimulatorError("\(name) did not start")
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    package func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }

    /// Waits until the server stops.
    package func wait() async throws {
        try await task.value
    }
}
