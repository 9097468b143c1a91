import ArgumentParser
import CallbackQueue
import Foundation
import Orders
import PayhookConfig
import PayhookCore
import Postgres
import Webhooks
import Workers

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue depth by state and channel, oldest due age, dead and flagged counts, throughput, webhook endpoints.")

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let configuration = try options.load()
        let connection = try Connection(configuration.database.url)
        let status = try QueueStatus.fetch(on: connection)
        print("callbacks by channel and state:")
        if status.counts.isEmpty { print("  (none)") }
        for count in status.counts {
            print("  \(count.channel.padding(toLength: 16, withPad: " ", startingAt: 0)) "
                + "\(count.state.padding(toLength: 11, withPad: " ", startingAt: 0)) \(count.count)")
        }
        let oldest = status.oldestDueSeconds.map { String(format: "%.1f s", $0) } ?? "none due"
        print("oldest due:        \(oldest)")
        print("dead:              \(status.dead)")
        print("flagged conflicts: \(try OrderLookup.flaggedConflicts(on: connection))")
        print("done per second:   \(String(format: "%.1f", status.donePerSecondLastMinute)) (last minute)")
        printStorage(try QueueStorage.read(countingStates: true, on: connection), settings: configuration.worker.partitions)
        let delivery = try DeliveryStatus.read(on: connection)
        print("webhook endpoints:")
        if delivery.endpoints.isEmpty { print("  (none)") }
        for endpoint in delivery.endpoints {
            var state = endpoint.disabledReason.map { "disabled (\($0))" } ?? (endpoint.active ? "enabled" : "not configured")
            if let since = endpoint.failingSince, endpoint.disabledReason == nil {
                state += String(format: ", failing for %.0f s", Date().timeIntervalSince(since))
            }
            let oldest = endpoint.oldestUndeliveredSeconds.map { String(format: "%.1f s", $0) } ?? "-"
            print("  \(endpoint.id.padding(toLength: 16, withPad: " ", startingAt: 0)) \(state); pending \(endpoint.pending), "
                + "in flight \(endpoint.processing), dead \(endpoint.dead), "
                + "oldest undelivered \(oldest)")
        }
    }

    /// Each partition with its range, size and the callbacks that keep it; then retention.
    private func printStorage(_ storage: QueueStorage, settings: PartitionSettings?) {
        let total = storage.tableBytes.reduce(Int64(0)) { $0 + $1.totalBytes }
        let indexes = storage.tableBytes.reduce(Int64(0)) { $0 + $1.indexBytes }
        print("queue tables:      \(Self.bytes(total)) (indexes \(Self.bytes(indexes)))"
            + storage.tableBytes.map { "; \($0.table) \(Self.bytes($0.totalBytes))" }.joined())
        print("queue partitions (received time, UTC):")
        let cutoff = settings?.keepSeconds.map { Date().addingTimeInterval(-Double($0)) }
        for partition in storage.partitions {
            let range = partition.lower.map { "\(Self.time($0)) .. \(partition.upper.map(Self.time) ?? "")" }
                ?? "default (strays, carried unfinished)"
            let callbacks = partition.estimatedCallbacks.map { "~\($0) callbacks" } ?? "not analyzed yet"
            var line = "  \(range.padding(toLength: 42, withPad: " ", startingAt: 0)) \(callbacks), \(Self.bytes(partition.totalBytes))"
            let states = [("pending", partition.pending), ("processing", partition.processing), ("dead", partition.dead)]
                .filter { $0.1 > 0 }.map { "\($0.1) \($0.0)" }
            if !states.isEmpty { line += "; " + states.joined(separator: ", ") }
            if let cutoff, let upper = partition.upper, upper <= cutoff {
                let unfinished = partition.pending + partition.processing
                line += unfinished > QueueMaintenance.carryLimit
                    ? "; past retention, held back by \(unfinished) unfinished (a backlog)" : "; past retention, next run drops it"
            }
            print(line)
        }
        if let keep = settings?.keepSeconds {
            print("retention:         keep \(String(format: "%g", Double(keep) / 86_400)) days of finished callbacks")
        } else {
            print("retention:         off (retention.enabled: false)")
        }
        if let run = storage.lastRun {
            var line = "last maintenance:  \(Self.time(run.ranAt)) UTC (\(String(format: "%.0f", Date().timeIntervalSince(run.ranAt))) s ago): "
                + "\(run.partitionsCreated) made, \(run.partitionsDropped) dropped, \(run.callbacksCarried) callbacks carried, "
                + "\(run.defaultPruned) pruned from default"
            if run.heldPartitions > 0 {
                line += "; held back: \(run.heldPartitions) partitions by \(run.heldCallbacks) unfinished (more than "
                    + "\(QueueMaintenance.carryLimit) a partition: the workers' backlog)"
            }
            if let error = run.error { line += "; incomplete: \(error)" }
            print(line)
        } else {
            print("last maintenance:  never (no worker has run yet)")
        }
    }

    static func bytes(_ count: Int64) -> String {
        count >= 1 << 30 ? String(format: "%.1f GiB", Double(count) / Double(1 << 30))
            : count >= 1 << 20 ? String(format: "%.1f MiB", Double(count) / Double(1 << 20))
            : String(format: "%.0f KiB", Double(count) / 1024)
    }

    static func time(_ date: Date) -> String {
        CivilTime(epochSeconds: Int64(date.timeIntervalSince1970.rounded(.down))).text()
    }
}
