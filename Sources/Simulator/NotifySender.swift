import AsyncHTTPClient
import Channels
import Foundation
import NIOCore
import NIOHTTP1
import PayhookCore

/// Delivers a simulated channel's notify to the merchant's `notify_url` as the channel does:
/// an HTTP POST, retried with a doubling backoff until the merchant acknowledges it in the
/// channel's own format.
struct NotifySender: Sendable {
    /// What the channel takes as "received".
    enum Acknowledgement: Sendable {
        /// Alipay: the body `success`.
        case alipay
        /// WeChat Pay v3: any 2xx.
        case wechatPay
        /// Points: HTTP 200 and `{"code":"SUCCESS"}`.
        case points

        init(channel: String) {
            switch channel {
            case SimulatedChannels.alipayID: self = .alipay
            case SimulatedChannels.wechatPayID: self = .wechatPay
            default: self = .points
            }
        }

        func accepts(status: Int, body: [UInt8]) -> Bool {
            switch self {
            case .alipay:
                (200..<300).contains(status)
                    && String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "success"
            case .wechatPay:
                (200..<300).contains(status)
            case .points:
                status == 200 && (try? JSONValue.parse(body))?["code"]?.stringValue == "SUCCESS"
            }
        }
    }

    /// One notify's deliveries: how many were tried and whether one was acknowledged.
    struct Report: Sendable {
        var attempts = 0
        var acknowledged = false
    }

    var url: String
    var headers: [HeaderField]
    var body: [UInt8]
    var acknowledgement: Acknowledgement

    /// Tries up to `behaviour.attempts` times; stops early on cancellation (the simulator stopping).
    func deliver(_ behaviour: DefaultNotifyBehaviour) async -> Report {
        var report = Report()
        var wait = behaviour.backoff
        for attempt in 0..<max(1, behaviour.attempts) {
            if attempt > 0 {
                do { try await Task.sleep(for: wait) } catch { return report }
                wait *= 2
            }
            if Task.isCancelled { return report }
            report.attempts += 1
            if await deliverOnce(timeout: behaviour.timeout) {
                report.acknowledged = true
                return report
            }
        }
        return report
    }

    /// One POST; false when refused, unacknowledged or unreachable (the channel only retries).
    private func deliverOnce(timeout: Duration) async -> Bool {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for field in headers { request.headers.add(name: field.name, value: field.value) }
        request.body = .bytes(body)
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(timeout))
            let received = try await response.body.collect(upTo: 64 << 10)
            return acknowledgement.accepts(status: Int(response.status.code), body: Array(buffer: received))
        } catch {
            return false
        }
    }
}
