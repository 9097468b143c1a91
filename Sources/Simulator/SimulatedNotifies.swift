import PayhookCore
import Channels
import Foundation
import Synchronization

/// One order's notifies as the simulated channel sent them.
public struct NotifyCounts: Sendable, Hashable {
    /// Notifies the channel meant to send, never-sent ones included.
    public var scheduled = 0
    /// Notifies dropped by ``NotifyFault/neverSent``.
    public var neverSent = 0
    /// Deliveries tried: retries and the second copy of a sent-twice notify included.
    public var attempts = 0
    /// Notifies (copies) the merchant acknowledged.
    public var acknowledged = 0
    /// Notifies (copies) given up on after the last attempt without an acknowledgement.
    public var abandoned = 0

    public init() {}
}

/// The simulated channels' payment notifies: signed by the channel sides, faulted by script
/// or rate, and delivered in tasks of their own (never on a NIO thread).
extension ChannelSimulator {
    /// The next notifies of this order take these faults, one per notify; after the last the
    /// default applies again. Replaces an earlier script for the order.
    public func scriptNotifies(channel: String, outTradeNo: String, _ faults: [NotifyFault]) {
        state.withLock { $0.notifyScripts[OrderKey(channel: channel, outTradeNo: outTradeNo)] = faults }
    }

    /// What unscripted notifies get (rates, attempts, backoff).
    public var defaultNotifyBehaviour: DefaultNotifyBehaviour {
        get { state.withLock { $0.notifyDefaults } }
        set { state.withLock { $0.notifyDefaults = newValue } }
    }

    public func notifyCounts(channel: String, outTradeNo: String) -> NotifyCounts {
        state.withLock { $0.notifyCounts[OrderKey(channel: channel, outTradeNo: outTradeNo)] ?? NotifyCounts() }
    }

    /// Returns once every notify sent so far is acknowledged or given up on.
    public func waitForNotifies() async {
        while true {
            let running = state.withLock { Array($0.deliveries.values) }
            if running.isEmpty { return }
            for delivery in running { await delivery.value }
        }
    }

    /// Sends the order's notify (its state as it is now) to its `notify_url`, if it has one,
    /// unless the fault drawn for it says otherwise.
    func sendNotify(channel: String, order: ChannelOrder, now: Date) {
        guard let url = order.notifyURL else { return }
        let key = OrderKey(channel: channel, outTradeNo: order.outTradeNo)
        let uniform = Double.random(in: 0..<1)
        let (fault, behaviour) = state.withLock { state -> (NotifyFault, DefaultNotifyBehaviour) in
            var fault: NotifyFault
            if var steps = state.notifyScripts[key], !steps.isEmpty {
                fault = steps.removeFirst()
                state.notifyScripts[key] = steps.isEmpty ? nil : steps
            } else {
                fault = state.notifyDefaults.draw(uniform)
            }
            state.notifyCounts[key, default: NotifyCounts()].scheduled += 1
            if fault == .neverSent { state.notifyCounts[key, default: NotifyCounts()].neverSent += 1 }
            return (fault, state.notifyDefaults)
        }
        if fault == .neverSent { return }
        let (headers, body) = notifyMessage(channel: channel, order: order, now: now)
        let sender = NotifySender(url: url, headers: headers, body: body, acknowledgement: .init(channel: channel))
        let copies = fault == .sentTwice ? 2 : 1
        state.withLock { state in
            guard !state.stopping else { return }
            let id = state.nextDelivery
            state.nextDelivery += 1
            // Made under the lock, so the task's own removal cannot come before its insertion.
            state.deliveries[id] = Task {
                for _ in 0..<copies {
                    let report = await sender.deliver(behaviour)
                    self.state.withLock { state in
                        state.notifyCounts[key, default: NotifyCounts()].attempts += report.attempts
                        if report.acknowledged {
                            state.notifyCounts[key, default: NotifyCounts()].acknowledged += 1
                        } else {
                            state.notifyCounts[key, default: NotifyCounts()].abandoned += 1
                        }
                    }
                    // A duplicate follows an acknowledged notify; an unacknowledged one was retried already.
                    if !report.acknowledged { break }
                }
                _ = self.state.withLock { $0.deliveries.removeValue(forKey: id) }
            }
        }
    }

    /// The channel's signed notify for the order, with a fresh event id.
    private func notifyMessage(channel: String, order: ChannelOrder, now: Date) -> (headers: [HeaderField], body: [UInt8]) {
        switch channel {
        case SimulatedChannels.alipayID:
            return ([HeaderField(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")],
                    alipay.notifyBody(for: order, notifyID: Nonce.random(32).lowercased(), notifyTime: now))
        case SimulatedChannels.wechatPayID:
            return wechatPay.notify(for: order, eventID: UUID().uuidString.lowercased(), timestamp: now)
        default:
            return points.notify(for: order, eventID: "PEV-" + Nonce.random(20), timestamp: now)
        }
    }
}
