import Dispatch

/// Runs `body` once per element across the cores and returns the results in order. The
/// CPU work of a batch (signatures, decryption) runs this way on the worker's own thread.
func parallelMap<Element: Sendable, Result: Sendable>(
    _ elements: [Element], _ body: @Sendable (Element) -> Result
) -> [Result] {
    guard elements.count > 1 else { return elements.map(body) }
    let slots = ResultSlots<Result>(count: elements.count)
    DispatchQueue.concurrentPerform(iterations: elements.count) { index in
        slots.set(index, body(elements[index]))
    }
    return slots.values()
}

/// Write-once slots filled concurrently, each index by exactly one writer.
// @unchecked because each slot is written by one iteration or task only and read after
// concurrentPerform returned or the DispatchGroup was waited, which orders the writes first.
private final class ResultSlots<Value>: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<Value?>
    init(count: Int) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: nil)
    }
    deinit {
        storage.deinitialize()
        storage.deallocate()
    }
    func set(_ index: Int, _ value: Value) { storage[index] = value }
    func values() -> [Value] { storage.map { $0! } }
}

/// Runs `body` for each index as its own task, all at once, and waits on this
/// (non-cooperative) thread for every result: a batch's query API calls in flight
/// together. Never call it from a Swift concurrency task.
func concurrentlyAwait<Result: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) async -> Result) -> [Result] {
    let slots = ResultSlots<Result>(count: count)
    let finished = DispatchGroup()
    for index in 0..<count {
        finished.enter()
        Task {
            slots.set(index, await body(index))
            finished.leave()
        }
    }
    finished.wait()
    return slots.values()
}
