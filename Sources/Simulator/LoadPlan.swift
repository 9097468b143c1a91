public import Channels
public import Foundation
import PayhookCore
import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// Everything one load run sends, decided and signed before the first request.
///
/// Each order gets one ``NotifyKind`` from the mix; stale and probe orders go to WeChat
/// Pay, the others round-robin over the three channels. The channel's own book says paid
/// only for orders whose notify is genuine (valid, duplicate); for the rest it says not paid,
/// so a reconciliation query after a rejected notify does not pay them either.
public struct LoadPlan: Sendable {
    public struct Order: Sendable {
        public var channel: String
        public var kind: NotifyKind
        /// As the channel's book holds it (paid only for valid and duplicate).
        public var book: ChannelOrder
        public var outTradeNo: String { book.outTradeNo }
    }

    public struct Send: Sendable {
        /// Position in the run; sent as `?sim=RUN.SEQ` so the stored callback can be found again.
        public var sequence: Int
        public var orderIndex: Int
        public var notify: SimulatedNotify
    }

    /// A short random id shared by this run's order numbers (`SIM_RUN_0000001`) and markers.
    public let runID: String

    /// This run's order numbers start so; letters, digits and `_` fit every channel's rules,
    /// so the orders can be made through the site API.
    public static func orderPrefix(_ runID: String) -> String { "SIM_\(runID)_" }

    /// A `LIKE` pattern for this run's order numbers (`_` escaped: in LIKE it matches any character).
    public var orderNumberPattern: String { Self.orderPrefix(runID).replacingOccurrences(of: "_", with: "\\_") + "%" }
    public var orders: [Order]
    /// In sending order; a duplicate's second copy follows a few sends after the first.
    public var sends: [Send]

    /// The query string that marks a send.
    public func marker(_ sequence: Int) -> String { "sim=\(runID).\(sequence)" }

    /// Decides the orders for `count` orders in the mix's proportions and signs every
    /// notify, spreading the signing over the cores.
    public static func make(factory: NotifyFactory, mix: LoadMix, count: Int, runID: String = Nonce.random(6),
                            now: Date = Date()) async -> LoadPlan {
        let kinds = mix.sequence(total: count)
        var orders: [Order] = []
        orders.reserveCapacity(count)
        let rotation = SimulatedChannels.channelIDs
        var next = 0
        let paidAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        for (index, kind) in kinds.enumerated() {
            let channel: String
            if kind == .stale || kind == .probe {
                channel = SimulatedChannels.wechatPayID
            } else {
                channel = rotation[next % rotation.count]
                next += 1
            }
            let number = String(index).leftPadded(to: 7)
            let tradePrefix = channel == SimulatedChannels.alipayID ? "2099" : channel == SimulatedChannels.wechatPayID ? "4299" : "PT99"
            let book = ChannelOrder(
                outTradeNo: Self.orderPrefix(runID) + number, channelTradeNo: "\(tradePrefix)\(runID)\(number)",
                status: kind.paysOrder ? .paid : .pending,
                // 0.01 to 999.99 yuan, varied but reproducible.
                amountMinor: Int64(1 + (index * 7919) % 99_999),
                paidAt: kind.paysOrder ? paidAt : nil)
            orders.append(Order(channel: channel, kind: kind, book: book))
        }

        // Every notify states the payment as the channel would send it: paid.
        let planned = orders
        let notifies = await signAll(planned.indices.map { index in
            { @Sendable () -> SimulatedNotify in
                let order = planned[index]
                var claimed = order.book
                claimed.status = .paid
                claimed.paidAt = paidAt
                return factory.notify(order.kind, channel: order.channel, order: claimed,
                                      eventID: "SIMEV\(runID)\(String(index).leftPadded(to: 7))", now: now)
            }
        })

        var placed: [(key: Double, orderIndex: Int)] = []
        for (index, order) in orders.enumerated() {
            placed.append((Double(index), index))
            if order.kind.sends > 1 { placed.append((Double(index) + 7.5, index)) }
        }
        placed.sort { $0.key < $1.key }
        let sends = placed.enumerated().map { Send(sequence: $0.offset, orderIndex: $0.element.orderIndex, notify: notifies[$0.element.orderIndex]) }
        return LoadPlan(runID: runID, orders: orders, sends: sends)
    }

    private static func signAll(_ jobs: [@Sendable () -> SimulatedNotify]) async -> [SimulatedNotify] {
        let lanes = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return await withTaskGroup(of: [(Int, SimulatedNotify)].self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    stride(from: lane, to: jobs.count, by: lanes).map { ($0, jobs[$0]()) }
                }
            }
            var out = [SimulatedNotify?](repeating: nil, count: jobs.count)
            for await part in group { for (index, notify) in part { out[index] = notify } }
            return out.map { $0! }
        }
    }

    /// Adds the plan's orders to the books of a running ``ChannelSimulatorServer`` (another
    /// process: `payhook sim channels`) and waits until it has signed their answers.
    /// `caFile` is the simulator's CA when it serves HTTPS (`--tls`).
    public func register(withSimulatorAt baseURL: String, caFile: String? = nil) async throws {
        let client = try SimulatorTLS.client(trusting: caFile)
        let encoder = JSONEncoder()
        let records = orderRecords
        var start = 0
        while start < records.count {
            let chunk = Array(records[start..<min(start + 10_000, records.count)])
            var request = HTTPClientRequest(url: SimulatedChannels.trimmed(baseURL) + "/_sim/orders?prepare=1")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(Array(try encoder.encode(chunk)))
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: .seconds(300))
            } catch {
                throw SimulatorError("cannot reach the channel simulator at \(baseURL) (is `payhook sim channels` running?): \(error)")
            }
            _ = try await response.body.collect(upTo: 1 << 16)
            guard response.status.code == 200 else {
                throw SimulatorError("the channel simulator refused the orders: HTTP \(response.status.code)")
            }
            start += chunk.count
        }
    }

    /// The books' entries for ``ChannelSimulatorServer``'s `POST /_sim/orders`.
    public var orderRecords: [SimulatedOrderRecord] {
        orders.map { SimulatedOrderRecord(channel: $0.channel, order: $0.book) }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
