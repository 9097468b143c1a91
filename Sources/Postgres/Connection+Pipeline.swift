import CLibPQ

/// One statement with its parameters, run alone (`query`) or in a pipeline. With a
/// name it runs as that named prepared statement, prepared on first use; the name must
/// stand for the same SQL everywhere.
public struct SQLStatement: Sendable {
    public let name: String?
    public let sql: String
    public let binds: [PostgresBind]

    public init(_ sql: String, _ binds: [PostgresBind] = []) {
        self.name = nil
        self.sql = sql
        self.binds = binds
    }

    public init(prepared name: String, _ sql: String, _ binds: [PostgresBind] = []) {
        self.name = name
        self.sql = sql
        self.binds = binds
    }
}

extension Connection {
    /// Runs one statement, prepared where it has a name.
    @discardableResult
    public func query(_ statement: SQLStatement) throws(PostgresError) -> PostgresResult {
        guard let name = statement.name else { return try query(statement.sql, statement.binds) }
        return try query(prepared: name, statement.sql, statement.binds)
    }

    /// Sends all statements in one round trip (libpq pipeline mode) and returns their
    /// results in order. Up to the sync point they run as one implicit transaction unless
    /// they contain their own BEGIN/COMMIT: if one fails, the rest are skipped (inside an
    /// explicit transaction, that transaction is left aborted for the caller to roll back)
    /// and the first error is thrown.
    ///
    /// The connection stays in blocking mode, so keep pipelines to what fits the socket
    /// buffers (hundreds of small statements, not millions).
    public func pipeline(_ statements: [SQLStatement]) throws(PostgresError) -> [PostgresResult] {
        guard PQenterPipelineMode(handle) == 1 else {
            throw PostgresError(code: .client, context: "enter pipeline mode", message: Self.errorMessage(handle))
        }
        defer { _ = PQexitPipelineMode(handle) }
        // What each result answers: a statement, or the preparation of a name.
        enum Sent { case statement, preparation(String) }
        var sent: [Sent] = []
        var preparing: Set<String> = []
        for statement in statements {
            if let name = statement.name, !isPrepared(name), preparing.insert(name).inserted {
                let types = statement.binds.map { Oid($0.typeOID) }
                guard PQsendPrepare(handle, name, statement.sql, Int32(types.count), types) == 1 else {
                    throw lostOrClientError("send pipeline preparation")
                }
                sent.append(.preparation(name))
            }
            let accepted = withParameters(statement.binds) { types, values, lengths, formats in
                if let name = statement.name {
                    return PQsendQueryPrepared(handle, name, Int32(statement.binds.count), values, lengths, formats, 1)
                }
                return PQsendQueryParams(handle, statement.sql, Int32(statement.binds.count),
                                         types, values, lengths, formats, 1)
            }
            guard accepted == 1 else { throw lostOrClientError("send pipeline statement") }
            sent.append(.statement)
        }
        guard PQpipelineSync(handle) == 1 else { throw lostOrClientError("pipeline sync") }
        countRoundTrip()

        var results: [PostgresResult] = []
        var firstError: PostgresError?
        for kind in sent {
            guard let result = PQgetResult(handle) else { throw lostOrClientError("pipeline result") }
            do {
                let converted = try Self.convert(result, connection: self)
                switch kind {
                case .statement: results.append(converted)
                case .preparation(let name): markPrepared(name)
                }
            } catch {
                // Statements after a failed one only report "aborted"; keep the cause.
                if firstError == nil { firstError = error }
            }
            PQclear(result)
            // Each statement's results end with a NULL.
            while let extra = PQgetResult(handle) { PQclear(extra) }
        }
        guard let sync = PQgetResult(handle) else { throw lostOrClientError("pipeline sync result") }
        let syncStatus = PQresultStatus(sync)
        PQclear(sync)
        guard syncStatus == PGRES_PIPELINE_SYNC else { throw lostOrClientError("pipeline sync result") }
        if let firstError { throw firstError }
        return results
    }

    private func lostOrClientError(_ step: String) -> PostgresError {
        PostgresError(code: isConnected ? .client : .connectionLost, context: step, message: Self.errorMessage(handle))
    }
}
