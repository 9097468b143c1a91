extension Connection {
    /// Runs `body` holding the session-level advisory lock `key`, then releases it, also
    /// when `body` throws. `wait: false` takes the lock only if it is free and returns nil
    /// without running `body` when another session holds it. If the unlock cannot be sent
    /// (the connection is gone), the lock ends with the session.
    public func withAdvisoryLock<T>(_ key: Int64, wait: Bool,
                                    _ body: () throws(PostgresError) -> T) throws(PostgresError) -> T? {
        if wait {
            try query("SELECT pg_advisory_lock($1)", [.int64(key)])
        } else {
            let locked: Bool = try query("SELECT pg_try_advisory_lock($1)", [.int64(key)])[0].decode(0)
            guard locked else { return nil }
        }
        do {
            let result = try body()
            try query("SELECT pg_advisory_unlock($1)", [.int64(key)])
            return result
        } catch {
            if isConnected { _ = try? query("SELECT pg_advisory_unlock($1)", [.int64(key)]) }
            throw error
        }
    }
}
