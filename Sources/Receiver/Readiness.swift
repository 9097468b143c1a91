public import Postgres
import Synchronization

/// Whether the database answers, checked once a second in the background so `/readyz`
/// answers at once.
public final class Readiness: Sendable {
    private let ready = Atomic(false)
    private let connection: Connection.Configuration

    public init(connection: Connection.Configuration) {
        var settings = connection
        settings.connectTimeoutSeconds = 2
        self.connection = settings
    }

    public var isReady: Bool { ready.load(ordering: .relaxed) }

    /// Checks until the task is cancelled.
    public func run() async {
        let serial = SerialConnection(configuration: connection, label: "payhook.readiness")
        while !Task.isCancelled {
            do {
                _ = try await serial.run { try $0.query("SELECT 1") }
                ready.store(true, ordering: .relaxed)
            } catch {
                ready.store(false, ordering: .relaxed)
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
