import Dispatch
import Synchronization

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

/// Write-once slots filled from concurrent iterations, each index by exactly one of them.
// @unchecked because each slot is written by one iteration only and read after
// concurrentPerform returns, which orders the writes before the read.
private final class ResultSlots<Value>: @unchecked Sendable {
    private var storage: [Value?]
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: Value) {
        storage.withUnsafeMutableBufferPointer { $0[index] = value }
    }
    func values() -> [Value] { storage.map { $0! } }
}

/// Waits on this (non-cooperative) thread for async work, such as a batch's query API
/// calls in flight together. Never call it from a Swift concurrency task.
func blockingAwait<Value: Sendable>(_ body: @escaping @Sendable () async -> Value) -> Value {
    let result = Mutex<Value?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let value = await body()
        result.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
}
