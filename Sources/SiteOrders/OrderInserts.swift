import Orders
import Postgres

/// New orders written together: while one statement is in flight, the requests that come
/// meanwhile wait and go into the next, so concurrent orders cost one commit, not one each
/// (group commit, as the receiver's enqueuer does for callbacks).
actor OrderInserts {
    private let database: any OrderDatabase
    private let maxBatch: Int
    private var waiting: [(order: SiteOrderStore.NewOrder,
                           answer: CheckedContinuation<SiteOrderStore.CreateOutcome, any Error>)] = []
    private var writing = false

    init(database: any OrderDatabase, maxBatch: Int = 64) {
        self.database = database
        self.maxBatch = maxBatch
    }

    func create(_ order: SiteOrderStore.NewOrder) async throws -> SiteOrderStore.CreateOutcome {
        try await withCheckedThrowingContinuation { answer in
            waiting.append((order, answer))
            if !writing {
                writing = true
                Task { await drain() }
            }
        }
    }

    private func drain() async {
        while !waiting.isEmpty {
            let batch = Array(waiting.prefix(maxBatch))
            waiting.removeFirst(batch.count)
            let orders = batch.map(\.order)
            do {
                let outcomes = try await database.run { try SiteOrderStore.create(orders, on: $0) }
                for (entry, outcome) in zip(batch, outcomes) { entry.answer.resume(returning: outcome) }
            } catch {
                for entry in batch { entry.answer.resume(throwing: error) }
            }
        }
        writing = false
    }
}
