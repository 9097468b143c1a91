import CallbackQueue
import Foundation
import Postgres
import PostgresTestSupport
import Simulator
import Testing

/// The operator's commands against a database the pipeline has worked on: `status`,
/// `dlq list`, `dlq replay`, `orders show`, as a shell would run them.
@Suite(.timeLimit(.minutes(3))) struct OperationsCommandTests {
    @Test func statusDeadLettersReplayAndOrderHistory() async throws {
        let harness = try await PipelineHarness()
        defer { Task { await harness.tearDown() } }
        let order = try harness.order("OPS-1", channel: "points")
        let duplicate = try harness.order("OPS-2", channel: "alipay")
        harness.simulator.script(channel: "points", outTradeNo: "OPS-1", Array(repeating: .httpError(503), count: 4))
        try await harness.withPipeline { sender in
            try await sender.send(harness.notifies.notify(.valid, channel: "points", order: order, eventID: "o1"))
            for _ in 0..<2 {
                try await sender.send(harness.notifies.notify(.valid, channel: "alipay", order: duplicate, eventID: "o2"))
            }
            try await harness.waitForDrain()
        }
        let config = ["--config", harness.directory.configurationFile]

        let status = try ChildProcess.payhook(["status"] + config)
        #expect(status.status == 0)
        #expect(status.output.contains("points"))
        #expect(status.output.contains("dead:              1"))

        let list = try ChildProcess.payhook(["dlq", "list"] + config)
        #expect(list.status == 0)
        #expect(list.output.contains("query_unavailable"))
        #expect(list.output.contains("OPS-1"))
        let id = try harness.database.connect().query(
            "SELECT callback_id FROM callback_jobs WHERE state = 'dead'")[0].decode(0, as: Int64.self)

        let replay = try ChildProcess.payhook(["dlq", "replay", String(id), "999999"] + config)
        #expect(replay.status == 1)  // 999999 is not dead
        #expect(replay.output.contains("replayed 1 of 2"))
        #expect(replay.output.contains("not dead, left alone: 999999"))
        #expect(try harness.callbackStates("OPS-1") == ["pending"])
        let replayed = try harness.database.connect().query(
            "SELECT count(*) FROM callback_attempts WHERE callback_id = $1 AND outcome = 'replayed'", [.int64(id)])
        #expect(try replayed[0].decode(0, as: Int.self) == 1)

        let show = try ChildProcess.payhook(["orders", "show", "CT-OPS-2"] + config)  // by the channel's number
        #expect(show.status == 0)
        #expect(show.output.contains("order           OPS-2"))
        #expect(show.output.contains("status          paid"))
        #expect(show.output.contains("transition"))
        #expect(show.output.contains("duplicate"))

        let missing = try ChildProcess.payhook(["orders", "show", "NO-SUCH"] + config)
        #expect(missing.status == 1)
        let usage = try ChildProcess.payhook(["dlq", "replay"] + config)
        #expect(usage.status == 2)
    }

    /// A webhook endpoint whose secret file is missing stops `payhook work` at start with
    /// exit 2 naming the key, before it touches the database.
    @Test func aMissingWebhookSecretIsExitTwoNamingTheKey() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("payhook-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try """
            database: {url: "postgres://nobody@127.0.0.1:1/none"}
            webhooks: [{id: shop, url: "https://shop.example/payhook", secret_file: /nonexistent/shop.secret}]
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let work = try ChildProcess.payhook(["work", "--config", file])
        #expect(work.status == 2)
        #expect(work.output.contains("webhooks[0].secret_file"), "\(work.output)")
    }
}
