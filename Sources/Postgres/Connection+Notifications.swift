import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// A NOTIFY received on a channel this connection listens on.
public struct PostgresNotification: Sendable, Equatable {
    public let channel: String
    public let payload: String
    /// The backend that sent it.
    public let senderPID: Int32
}

extension Connection {
    /// Starts listening on `channel`; kept across `reconnect()`.
    public func listen(_ channel: String) throws(PostgresError) {
        try query("LISTEN " + quoteIdentifier(channel))
        rememberListening(channel)
    }

    public func unlisten(_ channel: String) throws(PostgresError) {
        try query("UNLISTEN " + quoteIdentifier(channel))
        forgetListening(channel)
    }

    /// Returns the notifications that have arrived, waiting up to `timeout` for the first
    /// one. An empty array means the wait timed out.
    public func waitForNotifications(timeout: Duration) throws(PostgresError) -> [PostgresNotification] {
        var received = try drainNotifications()
        guard received.isEmpty else { return received }
        let deadline = ContinuousClock.now + timeout
        while received.isEmpty {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { break }
            let milliseconds = Int32(clamping: remaining.components.seconds * 1000
                + remaining.components.attoseconds / 1_000_000_000_000_000 + 1)
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 && errno != EINTR {
                throw PostgresError(code: .client, context: "poll failed")
            }
            if ready > 0 { received = try drainNotifications() }
        }
        return received
    }

    private func drainNotifications() throws(PostgresError) -> [PostgresNotification] {
        guard PQconsumeInput(handle) == 1 else {
            throw PostgresError(code: .connectionLost, message: Self.errorMessage(handle))
        }
        var received: [PostgresNotification] = []
        while let notify = PQnotifies(handle) {
            let pointee = notify.pointee
            received.append(PostgresNotification(channel: String(cString: pointee.relname),
                                                 payload: String(cString: pointee.extra),
                                                 senderPID: pointee.be_pid))
            PQfreemem(notify)
        }
        return received
    }
}
