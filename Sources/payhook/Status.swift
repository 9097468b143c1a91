import ArgumentParser
import CallbackQueue
import Foundation
import Orders
import PayhookConfig
import Postgres

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue depth by state and channel, oldest due age, dead and flagged counts, throughput.")

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
    }
}
