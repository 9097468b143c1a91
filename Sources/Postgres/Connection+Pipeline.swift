import CLibPQ

/// One statement of a pipeline.
public struct PipelineStatement: Sendable {
    public let sql: String
    public let binds: [PostgresBind]

    public init(_ sql: String, _ binds: [PostgresBind] = []) {
        self.sql = sql
        self.binds = binds
    }
}

extension Connection {
    /// Sends all statements in one round trip (libpq pipeline mode) and returns their
    /// results in order. Up to the sync point they run as one implicit transaction unless
    /// they contain their own BEGIN/COMMIT: if one fails, the rest are skipped, nothing of
    /// the batch is committed, and the first error is thrown.
    ///
    /// The connection stays in blocking mode, so keep pipelines to what fits the socket
    /// buffers (hundreds of small statements, not millions).
    public func pipeline(_ statements: [PipelineStatement]) throws(PostgresError) -> [PostgresResult] {
        guard PQenterPipelineMode(handle) == 1 else {
            throw PostgresError(code: .client, context: "enter pipeline mode", message: Self.errorMessage(handle))
        }
        defer { _ = PQexitPipelineMode(handle) }
        for statement in statements {
            let sent = withParameters(statement.binds) { types, values, lengths, formats in
                PQsendQueryParams(handle, statement.sql, Int32(statement.binds.count),
                                  types, values, lengths, formats, 1)
            }
            guard sent == 1 else { throw lostOrClientError("send pipeline statement") }
        }
        guard PQpipelineSync(handle) == 1 else { throw lostOrClientError("pipeline sync") }

        var results: [PostgresResult] = []
        var firstError: PostgresError?
        for _ in statements {
            guard let result = PQgetResult(handle) else { throw lostOrClientError("pipeline result") }
            do {
                results.append(try Self.convert(result, connection: self))
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
