import ArgumentParser
import CallbackQueue
import Foundation
import Orders
import PayhookConfig
import Postgres
import Webhooks

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
}
